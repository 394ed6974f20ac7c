"""Crash safety of range copies: a worker killed with SIGKILL mid-disk, and every process stopped mid-disk.

Real NATS (file store), ferry-vcsim and ``python -m ferry_transfer`` worker processes. Each
range is one read whose ``Range`` header a fault rule of its own matches: the rule slows the
read down (so workers are mid-range when they die) and counts it (so the test knows which
ranges were read again).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ferry_peers.nats_server import NatsServer, start_nats_server
from ferry_peers.vcsim import Vcsim
from ferry_shared.bus.connection import connect
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.migrations import DiskCopied
from ferry_shared.service import Bus
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import async_wait_for, eventually
from ferry_transfer.domain.checkpoint import DiskRecord
from ferry_transfer.domain.checksum import disk_checksum

from .transfer_rig import Disk, TransferRig, file_sink, model, one_read_per_range, transfer_rig

pytestmark = [pytest.mark.vsphere, pytest.mark.nats]

MiB = 1024 * 1024
RANGE = MiB
RANGES = 24
MODEL = model([{"name": "dense", "disks": [{"capacity": "24MiB", "content": {"kind": "random", "seed": 31}}]}])


@pytest.fixture
def simulator(vcsim_factory: VcsimFactory) -> Vcsim:
    return vcsim_factory(model=MODEL)


@pytest.fixture(autouse=True)
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    one_read_per_range(monkeypatch, RANGE)


def assert_copied(rig: TransferRig, disk: Disk, target: Path, copied: DiskCopied) -> None:
    """Byte-identical, the right checksum, each range counted once, progress forward and within the disk."""
    source = disk.path_on_disk.read_bytes()
    assert target.read_bytes() == source
    assert copied.sha256 == disk_checksum(source, RANGE)
    assert copied.bytes_read == copied.bytes_written == disk.size  # a range read twice is counted once
    assert len(rig.of(DiskCopied, disk)) == 1
    done = rig.progress(disk)
    assert done == sorted(done) and len(set(done)) == len(done) and done[-1] == disk.size, done


MOVED_WITHIN = 15.0
"""Seconds after a worker's death within which its ranges are read again by another (ack wait 5 s)."""


async def note_rereads(rig: TransferRig, rules: dict[int, str], found: dict[int, float]) -> None:
    """Until cancelled, note in ``found`` when each range was first read a second time (sampled every 0.1 s)."""
    while True:
        reads = await asyncio.to_thread(rig.reads_per_range, rules)
        now = time.monotonic()
        for index, count in reads.items():
            if count > 1:
                found.setdefault(index, now)
        await asyncio.sleep(0.1)


def done_ranges(record: DiskRecord | None) -> set[int]:
    assert record is not None
    return {index for index in range(record.count) if record.is_done(index)}


async def test_a_worker_killed_mid_disk_loses_nothing_and_counts_nothing_twice(
    bus: Bus, nats_server: NatsServer, simulator: Vcsim, tmp_path: Path
) -> None:
    async with transfer_rig(bus, nats_server, simulator, tmp_path) as rig:
        disk = rig.disk("dense")
        rules = rig.slow_ranges(disk, RANGE, delay_ms=300)
        victim, survivor = await rig.start_workers(2)
        target = tmp_path / "dense.raw"
        await rig.copy(disk, file_sink(disk, target))
        await eventually(lambda: len(rig.ranges_copied_by(victim)) >= 2, timeout=30, what="the victim copying")
        victim.process.kill()  # SIGKILL, with ranges in flight
        killed_at = time.monotonic()
        rereads: dict[int, float] = {}
        sampling = asyncio.create_task(note_rereads(rig, rules, rereads))
        try:
            copied = await rig.first(DiskCopied, disk)
            await rig.settled()
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        moved_after = {index: at - killed_at for index, at in rereads.items()}

        assert_copied(rig, disk, target, copied)
        reads = rig.reads_per_range(rules)
        assert all(count >= 1 for count in reads.values())
        again = [index for index, count in reads.items() if count > 1]
        assert again, "no range was read twice: the worker was not killed mid-range"
        assert set(again) <= set(rig.ranges_copied_by(survivor))  # redelivered to the survivor
        assert set(rig.ranges_copied_by(victim)).isdisjoint(again)  # what the victim had finished stayed done
        assert set(again) <= set(moved_after), (again, moved_after)
        assert max(moved_after.values()) < MOVED_WITHIN, f"the dead worker's ranges moved late: {moved_after}"
        record = await rig.checkpoint(disk)
        assert record is not None and record.finished and record.bytes_done == disk.size


@pytest.fixture
async def restartable_nats(tmp_path: Path) -> AsyncIterator[list[NatsServer]]:
    """A nats-server the test may stop and start again on the same port and file store (last one listed)."""
    servers = [await asyncio.to_thread(start_nats_server, tmp_path / "nats")]
    yield servers
    await asyncio.to_thread(servers[-1].stop)


async def test_a_copy_resumes_from_its_checkpoint_after_every_process_stopped(
    restartable_nats: list[NatsServer], vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    simulator = vcsim_factory(model=MODEL)
    server = restartable_nats[0]
    nc = await connect(server.url, name="ferry-test", **server.connect_options())
    bus = Bus(nc=nc, js=nc.jetstream(), publisher=Publisher(nc.jetstream()))
    await ensure_topology(bus.js)
    try:
        async with transfer_rig(bus, server, simulator, tmp_path) as rig:
            disk = rig.disk("dense")
            rules = rig.slow_ranges(disk, RANGE, delay_ms=250)
            await rig.start_workers(2)
            target = tmp_path / "dense.raw"
            await rig.copy(disk, file_sink(disk, target))

            async def some_done() -> set[int] | None:
                record = await rig.checkpoint(disk)
                done = done_ranges(record) if record is not None else set()
                return done if len(done) >= 2 else None

            await async_wait_for(some_done, timeout=30, what="two ranges done")
            await asyncio.to_thread(rig.stop_workers)  # SIGTERM: in-flight ranges finish, queued ones wait
            before = done_ranges(await rig.checkpoint(disk))
            assert 2 <= len(before) < RANGES, before
            reads_before = rig.reads_per_range(rules)

            await nc.close()  # and NATS itself goes down and comes back with its file store
            port = urlsplit(server.url).port
            await asyncio.to_thread(server.stop)
            server = await asyncio.to_thread(start_nats_server, tmp_path / "nats", port=port)
            restartable_nats.append(server)
            nc = await connect(server.url, name="ferry-test", **server.connect_options())
            rig.bus = Bus(nc=nc, js=nc.jetstream(), publisher=Publisher(nc.jetstream()))
            await rig.subscribe()

            await rig.start_workers(2)
            record = await async_wait_for(
                lambda: _finished(rig, disk), timeout=60, what="the disk finished after the restart"
            )
            reads = rig.reads_per_range(rules)
            assert {index for index in before if reads[index] > reads_before[index]} == set(), (
                "ranges done before the stop were read again"
            )
            assert all(count >= 1 for count in reads.values())
            source = disk.path_on_disk.read_bytes()
            assert target.read_bytes() == source
            assert record.sha256 == disk_checksum(source, RANGE)
            assert record.bytes_read == disk.size
            copied = await rig.first(DiskCopied, disk)
            assert copied.sha256 == record.sha256
    finally:
        await nc.close()


async def _finished(rig: TransferRig, disk: Disk) -> DiskRecord | None:
    record = await rig.checkpoint(disk)
    return record if record is not None and record.finished else None
