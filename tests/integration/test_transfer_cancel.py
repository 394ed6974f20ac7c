"""A cancel reaches every transfer worker after nats-server restarted mid-copy.

Real NATS (file store, restarted on the same port and store), ferry-vcsim and two
``python -m ferry_transfer`` worker processes. Each range is one read whose ``Range`` header a
fault rule of its own matches: the rule slows the read down (so the copy is still running
when the cancel comes) and counts it (so the test knows which ranges were read after it).
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import nats.errors
import pytest

from ferry_peers.nats_server import NatsServer, start_nats_server
from ferry_peers.services import ServiceProcess
from ferry_peers.vcsim import Vcsim
from ferry_shared import subjects
from ferry_shared.bus.connection import connect
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.migrations import DiskCopied, DiskCopyCanceled, VmCancelRequested, step_id
from ferry_shared.service import Bus
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import async_wait_for

from .transfer_rig import Disk, TransferRig, file_sink, model, one_read_per_range, transfer_rig

pytestmark = [pytest.mark.vsphere, pytest.mark.nats]

MiB = 1024 * 1024
RANGE = MiB
RANGES = 64
MODEL = model([{"name": "big", "disks": [{"capacity": "64MiB", "content": {"kind": "random", "seed": 41}}]}])


@pytest.fixture(autouse=True)
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    one_read_per_range(monkeypatch, RANGE)


@pytest.fixture
async def nats_on_disk(tmp_path: Path) -> AsyncIterator[list[NatsServer]]:
    """A nats-server the test restarts on the same port and file store (the running one is last)."""
    servers = [await asyncio.to_thread(start_nats_server, tmp_path / "nats")]
    yield servers
    await asyncio.to_thread(servers[-1].stop)


async def feeds(rig: TransferRig) -> int:
    """Consumers following the cancels on the server (those of before a restart are gone: in memory)."""
    consumers = await rig.bus.js.consumers_info(subjects.EVENTS_STREAM)
    return sum(1 for info in consumers if info.config.filter_subject == VmCancelRequested.subject)


def log_count(worker: ServiceProcess, text: str) -> int:
    return worker.process.log_path.read_text().count(text)


async def done_count(rig: TransferRig, disk: Disk) -> int:
    record = await rig.checkpoint(disk)
    return 0 if record is None else sum(record.is_done(index) for index in range(record.count))


async def test_a_cancel_after_a_nats_restart_stops_every_worker_reading(
    nats_on_disk: list[NatsServer], vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    simulator: Vcsim = vcsim_factory(model=MODEL)
    server = nats_on_disk[0]
    nc = await connect(
        server.url, name="ferry-test", **server.connect_options()
    )  # reconnects by itself after the restart
    bus = Bus(nc=nc, js=nc.jetstream(), publisher=Publisher(nc.jetstream()))
    await ensure_topology(bus.js)
    try:
        async with transfer_rig(bus, server, simulator, tmp_path) as rig:
            disk = rig.disk("big")
            rules = rig.slow_ranges(disk, RANGE, delay_ms=400)
            workers = await rig.start_workers(2)
            await rig.copy(disk, file_sink(disk, tmp_path / "big.raw"))
            await async_wait_for(lambda: _at_least(rig, disk, 2), timeout=30, what="two ranges done")

            port = urlsplit(server.url).port
            await asyncio.to_thread(server.stop)
            server = await asyncio.to_thread(start_nats_server, tmp_path / "nats", port=port)
            nats_on_disk.append(server)
            await async_wait_for(lambda: _jetstream_up(rig), timeout=30, what="JetStream back")
            dead = [w.process.log_path for w in workers if w.process.process.poll() is not None]
            assert not dead, f"a worker died when NATS came back: {dead}"
            at_restart = await done_count(rig, disk)
            await async_wait_for(lambda: _at_least(rig, disk, at_restart + 2), timeout=60, what="copying again")
            # each worker follows the cancels again, from where it was
            await async_wait_for(lambda: _at_least_feeds(rig, len(workers)), timeout=30, what="new feeds")

            cancel = VmCancelRequested(message_id=step_id("m1", disk.moref, "cancel"), migration="m1", vm_id=disk.moref)
            await rig.bus.publisher.publish(cancel)
            canceled = await rig.first(DiskCopyCanceled, disk, within=10)
            reads_at_cancel = rig.reads_per_range(rules)
            await rig.settled()  # every range acknowledged: nothing is left to read

            assert canceled.message_id == step_id("m1", disk.moref, "disk_copy_canceled", disk.spec.key)
            assert rig.reads_per_range(rules) == reads_at_cancel, "a range was read after the cancel"
            read = sum(1 for count in reads_at_cancel.values() if count)
            assert read < RANGES - 8, f"{read} of {RANGES} ranges were read: the cancel came late"
            assert not rig.of(DiskCopied)
            record = await rig.checkpoint(disk)
            assert record is not None and not record.complete
            for worker in workers:  # both heard it: each acknowledged ranges of the VM unread
                assert log_count(worker, "skipped, the VM was cancelled") >= 1, worker.process.log_path
    finally:
        await nc.close()


async def _jetstream_up(rig: TransferRig) -> bool:
    if not rig.bus.nc.is_connected:
        return False
    try:
        await rig.bus.js.stream_info(subjects.EVENTS_STREAM)
    except nats.errors.Error:
        return False
    return True


async def _at_least_feeds(rig: TransferRig, count: int) -> bool:
    return await feeds(rig) >= count


async def _at_least(rig: TransferRig, disk: Disk, count: int) -> bool:
    return await done_count(rig, disk) >= count
