"""A forged CopyRange (same migration, VM, disk and range as a planned copy, another sink) against real
NATS, ferry-vcsim and a worker process: nothing is written where it points, and the worker reports
``MessageFailed`` with ``range_mismatch``. Its own simulator: a disk no other test has copied.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ferry_peers.nats_server import NatsServer
from ferry_peers.vcsim import Vcsim
from ferry_shared.messages import MessageFailed
from ferry_shared.migrations import CopyRange, DiskCopied, step_id
from ferry_shared.service import Bus
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import async_wait_for
from ferry_transfer.domain.checkpoint import DiskRecord

from .transfer_rig import Disk, TransferRig, file_sink, model, transfer_rig

pytestmark = [pytest.mark.vsphere, pytest.mark.nats]

RANGE = 1024 * 1024
MODEL = model([{"name": "forged", "disks": [{"capacity": "24MiB", "content": {"kind": "random", "seed": 31}}]}])


@pytest.fixture
def simulator(vcsim_factory: VcsimFactory) -> Vcsim:
    return vcsim_factory(model=MODEL)


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Small ranges read in one request each, quick progress."""
    monkeypatch.setenv("FERRY_TRANSFER_RANGE_SIZE", str(RANGE))
    monkeypatch.setenv("FERRY_TRANSFER_CHUNK_SIZE", str(RANGE))
    monkeypatch.setenv("FERRY_TRANSFER_PROGRESS_INTERVAL", "0.2")
    monkeypatch.setenv("FERRY_TRANSFER_RANGES_IN_FLIGHT", "4")
    return monkeypatch


@pytest.fixture
async def rig(bus: Bus, nats_server: NatsServer, simulator: Vcsim, tmp_path: Path) -> AsyncIterator[TransferRig]:
    async with transfer_rig(bus, nats_server, simulator, tmp_path) as rig:
        yield rig


async def first_ranges_done(rig: TransferRig, disk: Disk) -> DiskRecord:
    """The disk's checkpoint once some range is done (the others finish within the progress
    interval, so there may be no progress event before range 1's)."""

    async def some_done() -> DiskRecord | None:
        record = await rig.checkpoint(disk)
        return record if record is not None and record.bytes_done > 0 else None

    return await async_wait_for(some_done, timeout=30, what="a range of the planned copy to be done")


async def test_a_forged_range_pointing_at_another_sink_writes_nothing_and_fails(
    rig: TransferRig, worker_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    disk = rig.disk("forged")
    slow = f"bytes={RANGE}-{2 * RANGE - 1}"  # range 1 stays not done while the forged one arrives
    rig.control("POST", "/faults", {"path": disk.path_on_disk.name, "range": slow, "delay_ms": 4000})
    elsewhere = tmp_path / "elsewhere.raw"
    untouched = (b"not yours" * (disk.size // 9 + 1))[: disk.size]
    elsewhere.write_bytes(untouched)
    await rig.start_workers(1)
    target = tmp_path / "planned.raw"
    planned = await rig.copy(disk, file_sink(disk, target))
    record = await first_ranges_done(rig, disk)
    assert not record.is_done(1)
    forged = CopyRange(
        message_id=step_id("m1", disk.moref, "forged_range", disk.spec.key, 1),
        migration="m1",
        vm_id=disk.moref,
        source=planned.source,
        disk=planned.disk,
        sink=file_sink(disk, elsewhere),
        index=1,
        offset=RANGE,
        length=RANGE,
    )
    await rig.bus.publisher.publish(forged)

    failed = await rig.first(MessageFailed, disk, within=30)
    assert failed.error_code == "range_mismatch" and failed.failed_type == "ferry.transfer.copy_range.v1"
    assert "its sink differ" in failed.reason and str(elsewhere) not in failed.reason
    rig.events.remove(failed)  # the real copy goes on and must not fail
    await rig.first(DiskCopied, disk)
    await rig.settled()
    assert elsewhere.read_bytes() == untouched
    assert target.read_bytes() == disk.path_on_disk.read_bytes()
    final = await rig.checkpoint(disk)
    assert final is not None and final.locations is not None and final.locations.sink == planned.sink
