"""Disks copied as ranges on the work queue: real NATS, ferry-vcsim, transfer worker processes, qemu-nbd.

Several workers share one disk; with CBT only the allocated extents are read; zeroes become
holes in a raw file or WRITE_ZEROES on an NBD export over old data; a range that lands
wrong on the sink is found and copied again; a cancelled VM's ranges are skipped, even by
a worker that started after the cancel.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from ferry_peers.nats_server import NatsServer
from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_peers.vcsim import Vcsim
from ferry_shared import subjects
from ferry_shared.bus.consumer import ConsumerSpec, DurableConsumer
from ferry_shared.migrations import (
    DiskCopied,
    DiskCopyCanceled,
    SinkLocation,
    VmCancelRequested,
    step_id,
)
from ferry_shared.service import Bus
from ferry_shared.settings import ServiceSettings
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import eventually
from ferry_transfer.adapters.nbd import NbdClient
from ferry_transfer.adapters.sink_factory import SinkFactory
from ferry_transfer.bootstrap import bootstrap
from ferry_transfer.domain.checksum import disk_checksum
from ferry_transfer.domain.ports import Buffer, DiskSink
from ferry_transfer.settings import TransferSettings

from .transfer_rig import Disk, TransferRig, allocated, file_sink, model, nbd_sink, transfer_rig

pytestmark = [pytest.mark.vsphere, pytest.mark.nats]

MiB = 1024 * 1024
RANGE = MiB
CBT_RANGE = 4 * MiB
SPARSE_PATTERN = {"offset": "3MiB", "stride": "16MiB", "length": "1MiB"}  # 1 MiB of data every 16 MiB
SPARSE_EXTRA = [{"offset": "100MiB", "length": "64KiB"}]
SPARSE_DATA = 16 * MiB + 64 * 1024
MODEL = model(
    [
        {"name": "dense", "disks": [{"capacity": "48MiB", "content": {"kind": "random", "seed": 21}}]},
        {
            "name": "thin",
            "cbt": True,
            "disks": [
                {
                    "capacity": "256MiB",
                    "content": {"kind": "extents", "seed": 22, "pattern": SPARSE_PATTERN, "extents": SPARSE_EXTRA},
                }
            ],
        },
        {
            "name": "holes",
            "disks": [
                {
                    "capacity": "24MiB",
                    "content": {
                        "kind": "extents",
                        "seed": 23,
                        "extents": [{"offset": "1MiB", "length": "2MiB"}, {"offset": "10MiB", "length": "192KiB"}],
                    },
                }
            ],
        },
    ]
)


@pytest.fixture
def simulator(vcsim_factory: VcsimFactory) -> Vcsim:
    return vcsim_factory(model=MODEL)


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Tuning for worker processes: small ranges, quick progress, a short ack wait."""
    monkeypatch.setenv("FERRY_TRANSFER_RANGE_SIZE", str(RANGE))
    monkeypatch.setenv("FERRY_TRANSFER_CHUNK_SIZE", str(RANGE))
    monkeypatch.setenv("FERRY_TRANSFER_PROGRESS_INTERVAL", "0.2")
    monkeypatch.setenv("FERRY_TRANSFER_RANGES_IN_FLIGHT", "4")
    monkeypatch.setenv("FERRY_TRANSFER_ACK_WAIT", "3")
    return monkeypatch


@pytest.fixture
async def rig(bus: Bus, nats_server: NatsServer, simulator: Vcsim, tmp_path: Path) -> AsyncIterator[TransferRig]:
    async with transfer_rig(bus, nats_server, simulator, tmp_path) as rig:
        yield rig


def assert_progress(rig: TransferRig, disk: Disk) -> None:
    done = rig.progress(disk)
    assert done and done == sorted(done) and done[-1] == disk.size, done


def accepting(port: int) -> bool | None:
    with socket.socket() as probe:
        try:
            probe.connect(("127.0.0.1", port))
        except OSError:
            return None
    return True


@pytest.fixture
def qemu_nbd(tmp_path: Path) -> Iterator[Callable[[int], tuple[int, Path]]]:
    """Start qemu-nbd (discard=unmap) on a raw image of a size full of old data; returns its port and image."""
    processes: list[ManagedProcess] = []

    def start(size: int) -> tuple[int, Path]:
        image = tmp_path / f"volume-{len(processes)}.raw"
        with image.open("wb") as file:
            block = b"old!" * (MiB // 4)
            for _ in range(size // MiB):
                file.write(block)
        port = free_port()
        argv = ["qemu-nbd", "-f", "raw", "-x", "disk", "-b", "127.0.0.1", "-p", str(port), "--persistent"]
        argv += ["--shared=8", "--discard=unmap", "--cache=none", str(image)]
        process = ManagedProcess("qemu-nbd", argv, tmp_path / f"qemu-nbd-{len(processes)}.log")
        processes.append(process)
        process.wait_until(lambda: accepting(port), timeout=20, what="accepting connections")
        return port, image

    yield start
    for process in processes:
        process.stop()


async def read_export(port: int, size: int) -> bytes:
    async with NbdClient.connect(host="127.0.0.1", port=port, export_name="disk") as nbd:
        return b"".join([await nbd.pread(offset, min(8 * MiB, size - offset)) for offset in range(0, size, 8 * MiB)])


async def test_several_workers_copy_one_disk_together(
    rig: TransferRig, worker_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    disk = rig.disk("dense")
    rig.control("POST", "/faults", {"path": disk.path_on_disk.name, "delay_ms": 60})  # every range takes a while
    workers = await rig.start_workers(3)
    target = tmp_path / "dense.raw"
    await rig.copy(disk, file_sink(disk, target))
    copied = await rig.first(DiskCopied, disk)
    await rig.settled()

    source = disk.path_on_disk.read_bytes()
    assert target.read_bytes() == source
    assert copied.sha256 == disk_checksum(source, RANGE)
    assert copied.bytes_read == copied.bytes_written == disk.size
    assert len(rig.of(DiskCopied, disk)) == 1
    assert_progress(rig, disk)
    by_worker = [rig.ranges_copied_by(worker) for worker in workers]
    assert all(by_worker), f"a worker copied no range: {[len(done) for done in by_worker]}"
    assert sorted(index for done in by_worker for index in done) == list(range(disk.size // RANGE))


async def test_with_cbt_only_allocated_extents_are_read_and_holes_stay_holes(
    rig: TransferRig, worker_env: pytest.MonkeyPatch, tmp_path: Path, qemu_nbd: Callable[[int], tuple[int, Path]]
) -> None:
    worker_env.setenv("FERRY_TRANSFER_RANGE_SIZE", str(CBT_RANGE))
    disk = rig.disk("thin", cbt=True)
    await rig.start_workers(2)
    before = rig.control("GET", "/stats")["folder_bytes_sent"]
    target = tmp_path / "thin.raw"
    await rig.copy(disk, file_sink(disk, target))
    copied = await rig.first(DiskCopied, disk)
    sent = rig.control("GET", "/stats")["folder_bytes_sent"] - before

    source = disk.path_on_disk.read_bytes()
    assert target.read_bytes() == source
    assert SPARSE_DATA <= sent <= SPARSE_DATA + 4096  # the extents, and the coordinator's first 4 KiB
    assert copied.bytes_read == SPARSE_DATA and copied.bytes_written == SPARSE_DATA
    assert copied.zero_bytes_skipped == disk.size - SPARSE_DATA
    assert allocated(target) <= SPARSE_DATA + MiB
    assert copied.sha256 == disk_checksum(source, CBT_RANGE)
    assert_progress(rig, disk)

    # the same disk onto an NBD volume full of old data: the parts CBT skipped must read as zeroes too
    port, image = qemu_nbd(disk.size)
    await rig.copy(disk, nbd_sink(disk, port), migration="m2")
    again = await rig.first(DiskCopied, disk, migration="m2")
    assert await read_export(port, disk.size) == source
    assert again.sha256 == copied.sha256
    assert allocated(image) <= SPARSE_DATA + 4 * MiB  # zeroes were unmapped, not written


async def test_without_cbt_zero_blocks_become_holes_or_write_zeroes(
    rig: TransferRig, worker_env: pytest.MonkeyPatch, tmp_path: Path, qemu_nbd: Callable[[int], tuple[int, Path]]
) -> None:
    disk = rig.disk("holes")
    data = 2 * MiB + 192 * 1024
    await rig.start_workers(1)
    before = rig.control("GET", "/stats")["folder_bytes_sent"]
    target = tmp_path / "holes.raw"
    target.write_bytes(b"stale" * 200_000)  # an earlier attempt's leftovers
    await rig.copy(disk, file_sink(disk, target))
    copied = await rig.first(DiskCopied, disk)
    source = disk.path_on_disk.read_bytes()
    assert rig.control("GET", "/stats")["folder_bytes_sent"] - before >= disk.size  # no CBT: all of it is read
    assert target.read_bytes() == source
    assert (copied.bytes_written, copied.zero_bytes_skipped) == (data, disk.size - data)
    assert allocated(target) <= data + MiB

    port, image = qemu_nbd(disk.size)
    await rig.copy(disk, nbd_sink(disk, port), migration="m2")
    await rig.first(DiskCopied, disk, migration="m2")
    assert await read_export(port, disk.size) == source
    assert allocated(image) <= data + 4 * MiB


async def test_a_cancelled_vm_is_skipped_even_by_a_worker_started_after_the_cancel(
    rig: TransferRig, worker_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    disk = rig.disk("dense")
    rig.control("POST", "/faults", {"path": disk.path_on_disk.name, "delay_ms": 300})
    await rig.start_workers(2)
    target = tmp_path / "cancelled.raw"
    await rig.copy(disk, file_sink(disk, target))
    await eventually(lambda: bool(rig.progress(disk)), timeout=30, what="the first progress")
    await rig.bus.publisher.publish(
        VmCancelRequested(message_id=step_id("m1", disk.moref, "cancel"), migration="m1", vm_id=disk.moref)
    )
    canceled = await rig.first(DiskCopyCanceled, disk, within=10)
    assert canceled.message_id == step_id("m1", disk.moref, "disk_copy_canceled", disk.spec.key)
    await rig.settled()
    record = await rig.checkpoint(disk)
    assert record is not None and not record.complete
    assert not rig.of(DiskCopied)

    # every worker down; a VM is cancelled; a new worker must know before it copies anything of it
    await asyncio.to_thread(rig.stop_workers)
    late = rig.disk("holes")
    await rig.bus.publisher.publish(
        VmCancelRequested(message_id=step_id("m3", late.moref, "cancel"), migration="m3", vm_id=late.moref)
    )
    await rig.copy(late, file_sink(late, tmp_path / "late.raw"), migration="m3")
    await rig.start_workers(1)
    await rig.first(DiskCopyCanceled, late, migration="m3", within=30)
    await rig.settled()
    assert not (tmp_path / "late.raw").exists()


class CorruptingSinks(SinkFactory):
    """The real sink factory, whose sinks corrupt the first write at ``offset`` (as failing storage would)."""

    def __init__(self, offset: int) -> None:
        super().__init__()
        self.offset = offset
        self.writes_at_offset = 0

    @contextlib.asynccontextmanager
    async def open(self, location: SinkLocation) -> AsyncIterator[DiskSink]:
        async with super().open(location) as sink:
            yield _Corrupting(sink, self)


class _Corrupting:
    def __init__(self, sink: DiskSink, factory: CorruptingSinks) -> None:
        self._sink = sink
        self._factory = factory
        self.size = sink.size

    @property
    def blocking(self) -> "_Corrupting | None":
        return self if self._sink.blocking is not None else None

    def write_sync(self, offset: int, data: Buffer) -> None:
        assert self._sink.blocking is not None
        self._sink.blocking.write_sync(offset, self._corrupted(offset, data))

    def zero_sync(self, offset: int, length: int) -> None:
        assert self._sink.blocking is not None
        self._sink.blocking.zero_sync(offset, length)

    def read_into_sync(self, offset: int, buffer: memoryview) -> None:
        assert self._sink.blocking is not None
        self._sink.blocking.read_into_sync(offset, buffer)

    def reads_zero_sync(self, offset: int, length: int) -> bool:
        assert self._sink.blocking is not None
        return self._sink.blocking.reads_zero_sync(offset, length)

    async def write(self, offset: int, data: Buffer) -> None:
        await self._sink.write(offset, self._corrupted(offset, data))

    def _corrupted(self, offset: int, data: Buffer) -> Buffer:
        """The first write at the factory's offset lands with one bit flipped."""
        if offset == self._factory.offset:
            self._factory.writes_at_offset += 1
            if self._factory.writes_at_offset == 1:
                flipped = bytearray(data)
                flipped[100] ^= 0x01
                return flipped
        return data

    async def zero(self, offset: int, length: int) -> None:
        await self._sink.zero(offset, length)

    async def finish(self) -> None:
        await self._sink.finish()

    async def read(self, offset: int, length: int) -> bytes:
        return await self._sink.read(offset, length)

    async def reads_zero(self, offset: int, length: int) -> bool:
        return await self._sink.reads_zero(offset, length)


async def test_a_range_that_lands_corrupted_is_detected_and_copied_again(
    rig: TransferRig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disk = rig.disk("dense")
    sinks = CorruptingSinks(offset=5 * RANGE)
    tuning = TransferSettings(range_size=RANGE, chunk_size=RANGE, progress_interval=0.1)
    service = await bootstrap(rig.bus, ServiceSettings(), tuning, sinks=sinks)
    spec = ConsumerSpec(
        service=subjects.TRANSFER,
        stream=subjects.COMMANDS_STREAM,
        durable=subjects.durable_name(subjects.TRANSFER),
        filter_subject=subjects.commands_of(subjects.TRANSFER),
        fetch_timeout=0.2,
        drain_timeout=5.0,
    )
    stop = asyncio.Event()
    consumer = DurableConsumer(rig.bus.js, rig.bus.publisher, spec, service.parts.handlers)
    tasks = [asyncio.create_task(consumer.run(stop))] + [asyncio.create_task(j(stop)) for j in service.parts.background]
    try:
        target = tmp_path / "repaired.raw"
        with caplog.at_level(logging.WARNING, logger="ferry_transfer"):
            await rig.copy(disk, file_sink(disk, target))
            copied = await rig.first(DiskCopied, disk)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    source = disk.path_on_disk.read_bytes()
    assert target.read_bytes() == source
    assert copied.sha256 == disk_checksum(source, RANGE)
    assert sinks.writes_at_offset == 2
    assert "range 5: the target differs from what was read at offset 5242880; copying the range again" in caplog.text
