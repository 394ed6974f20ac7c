"""CopyDisk (the coordinator) and CopyRange (any worker) together, with hand-written fakes behind their ports:
planning, CBT, checkpoints, idempotent redelivery, the events, cancellation and error mapping."""

import asyncio
import errno
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
import pytest

from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.migrations import (
    CopyDisk,
    CopyRange,
    DiskCopied,
    DiskCopyCanceled,
    DiskCopyProgress,
    SinkLocation,
    SourceDisk,
    step_id,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.errors import INVALID_LOGIN, UNREACHABLE, ProviderError
from ferry_testpeers.waiting import eventually
from ferry_transfer.adapters.cancellation import CancellationRegistry
from ferry_transfer.adapters.nbd import NbdConnectionError
from ferry_transfer.adapters.range_copy import copy_range as copy_one_range
from ferry_transfer.domain.checkpoint import Change, CopyLocations, DiskRecord, RangeCounts, range_done
from ferry_transfer.domain.checksum import disk_checksum
from ferry_transfer.domain.copies import DiskId
from ferry_transfer.domain.errors import SinkUnavailable, SourceReadError
from ferry_transfer.domain.ports import CopyPorts
from ferry_transfer.domain.ranges import Extent
from ferry_transfer.handlers import CopyOptions, RangeOptions
from ferry_transfer.handlers.copy_disk import copy_disk
from ferry_transfer.handlers.copy_range import copy_range

from .transfer_fakes import (
    Cbt,
    Delivery,
    MemoryCheckpoints,
    MemorySink,
    MemorySource,
    Publisher,
    Readers,
    Sinks,
)

KiB = 1024
RANGE = 256 * KiB
CHUNK = 64 * KiB  # the zero-detection block: the smallest chunk
SIZE = 5 * RANGE + 16 * KiB  # six ranges, the last one short
DISK = DiskId("m1", "vm-1", 2000)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    data: bytes
    source: MemorySource
    sink: MemorySink
    readers: Readers
    sinks: Sinks
    cbt: Cbt
    checkpoints: MemoryCheckpoints
    publisher: Publisher
    registry: CancellationRegistry
    clock: Clock
    coordinator: Callable[[CopyDisk, Delivery], Awaitable[None]]
    worker: Callable[[CopyRange, Delivery], Awaitable[None]]

    async def plan(self, disk: CopyDisk) -> None:
        await self.coordinator(disk, Delivery())

    def ranges(self) -> list[CopyRange]:
        return [m for m in self.publisher.messages if isinstance(m, CopyRange)]

    async def run_ranges(self, ranges: list[CopyRange] | None = None) -> None:
        for command in self.ranges() if ranges is None else ranges:
            self.clock.now += 1
            await self.worker(command, Delivery())


def disk_data(seed: int = 4) -> bytes:
    data = bytearray(random.Random(seed).randbytes(SIZE))
    data[RANGE : 2 * RANGE] = bytes(RANGE)  # one zero range
    data[3 * RANGE : 3 * RANGE + 4 * KiB] = bytes(4 * KiB)  # zeroes inside a block of data: still data
    return bytes(data)


def make_world(
    *, data: bytes | None = None, sink: MemorySink | None = None, extents: list[Extent] | None = None
) -> World:
    content = disk_data() if data is None else data
    source = MemorySource(content)
    target = sink or MemorySink(SIZE)
    readers, sinks, cbt = Readers(source), Sinks(target), Cbt(extents)
    checkpoints, publisher, registry, clock = MemoryCheckpoints(), Publisher(), CancellationRegistry(), Clock()
    ports = CopyPorts(
        sources=readers, sinks=sinks, checkpoints=checkpoints, publisher=publisher, cancellations=registry, clock=clock
    )
    coordinator = functools.partial(copy_disk, ports=ports, cbt=cbt, options=CopyOptions(range_size=RANGE))
    worker = functools.partial(
        copy_range, ports=ports, copier=copy_one_range, options=RangeOptions(chunk_size=CHUNK, progress_interval=1.5)
    )
    return World(content, source, target, readers, sinks, cbt, checkpoints, publisher, registry, clock,
                 coordinator, worker)  # fmt: skip


def command(*, source_type: str = "vsphere", cbt: bool = False) -> CopyDisk:
    return CopyDisk(
        message_id="m1:vm-1:copy_disk:2000",
        migration="m1",
        vm_id="vm-1",
        source=ProviderSpec(name="vc", type=source_type, url="https://vc.example.com/sdk", username="u"),  # type: ignore[arg-type]
        disk=SourceDisk(key=2000, file_name="[ds1] vm-1/vm-1.vmdk", datacenter="DC0", capacity_bytes=SIZE, cbt=cbt),
        sink=SinkLocation(disk_key=2000, kind="file", size_bytes=SIZE, path="/targets/vm-1.raw"),
    )


async def test_the_coordinator_plans_ranges_stores_a_checkpoint_and_acks() -> None:
    world = make_world()
    delivery = Delivery()
    await world.coordinator(command(), delivery)
    ranges = world.ranges()
    assert [(r.index, r.offset, r.length) for r in ranges] == [(i, i * RANGE, RANGE) for i in range(5)] + [
        (5, 5 * RANGE, 16 * KiB)
    ]
    assert [r.message_id for r in ranges] == [step_id("m1", "vm-1", "copy_range", 2000, i) for i in range(6)]
    assert all(r.extents == () and r.sink == command().sink for r in ranges)
    assert world.source.reads == [(0, 4096)]  # the probe: login and file checked once, before any range
    assert world.sinks.prepared == [[]]  # nothing to zero: every range is copied
    record = world.checkpoints.records[DISK]
    assert (record.count, record.bytes_done, record.range_size) == (6, 0, RANGE)
    assert not delivery.leased and world.cbt.asked == 0


BOTH_SINK_PATHS = pytest.mark.parametrize("blocking", [False, True], ids=["async-sink", "blocking-sink"])
"""The sink's async calls (NBD) and its blocking ones, one thread per chunk (a local file)."""


@BOTH_SINK_PATHS
async def test_ranges_copied_in_any_order_make_the_disk_and_one_disk_copied(blocking: bool) -> None:
    world = make_world(sink=MemorySink(SIZE, fill=0xAA, blocking=blocking))  # a volume with old data on it
    await world.plan(command())
    ranges = world.ranges()
    random.Random(1).shuffle(ranges)
    await world.run_ranges(ranges)
    assert bytes(world.sink.data) == world.data
    assert world.sink.blocking is None or world.sink.blocking.calls > 0
    copied = world.publisher.of(DiskCopied)
    assert len(copied) == 1
    event = copied[0]
    assert isinstance(event, DiskCopied)
    assert event.message_id == step_id("m1", "vm-1", "disk_copied", 2000)
    assert event.sha256 == disk_checksum(world.data, RANGE)
    assert (event.bytes_total, event.bytes_read) == (SIZE, SIZE)
    assert event.bytes_written + event.zero_bytes_skipped == SIZE
    assert event.zero_bytes_skipped == RANGE
    assert event.seconds == 6.0  # six ranges, one clock second each
    progress = [m for m in world.publisher.messages if isinstance(m, DiskCopyProgress)]
    done = [p.bytes_done for p in progress]
    assert done == sorted(set(done)) and done[-1] == SIZE and len(done) < 6  # throttled to one per 1.5 s
    read = [p.bytes_read for p in progress]
    assert read == done and {p.bytes_to_read for p in progress} == {SIZE}, "without CBT every byte is read"
    assert world.publisher.messages.index(progress[-1]) == world.publisher.messages.index(event) - 1
    assert world.sink.open == 0


async def test_a_redelivered_range_is_not_copied_or_counted_again() -> None:
    world = make_world()
    await world.plan(command())
    first = world.ranges()[0]
    await world.run_ranges([first])
    reads = len(world.source.reads)
    record = world.checkpoints.records[DISK]
    await world.run_ranges([first])
    assert len(world.source.reads) == reads
    assert world.checkpoints.records[DISK] == record
    assert record.bytes_done == RANGE and record.bytes_read == RANGE


async def test_a_range_counted_by_another_worker_meanwhile_is_counted_once() -> None:
    world = make_world()
    await world.plan(command())
    first, second = world.ranges()[:2]
    await world.run_ranges([first])
    world.checkpoints.interfere = None
    before = world.checkpoints.records[DISK].bytes_done

    # another worker finishes range 1 between our read of the record and our write: we retry and see it done
    def other_worker(current: DiskRecord) -> DiskRecord | None:
        result = range_done(current, 1, RangeCounts(RANGE, 0, RANGE), world.clock.now, 100)
        return None if result is None else result[0]

    world.checkpoints.interfere = other_worker
    await world.run_ranges([second])
    record = world.checkpoints.records[DISK]
    assert world.checkpoints.conflicts == 1
    assert record.bytes_done == before + RANGE
    assert record.bytes_read == 2 * RANGE  # the other worker's count, not ours on top


async def test_a_redelivered_copy_disk_republishes_only_ranges_not_done_and_a_finished_one_its_result() -> None:
    world = make_world()
    await world.plan(command())
    await world.run_ranges(world.ranges()[:4])
    world.publisher.messages.clear()
    await world.plan(command())
    assert [r.index for r in world.ranges()] == [4, 5]
    assert world.sinks.prepared == [[]]  # prepared once only
    await world.run_ranges()
    copied = world.publisher.of(DiskCopied)
    assert len(copied) == 1 and isinstance(copied[0], DiskCopied)
    world.publisher.messages.clear()
    await world.plan(command())
    again = world.publisher.messages[-1]
    assert isinstance(again, DiskCopied)
    assert msgspec.structs.replace(again, occurred_at=copied[0].occurred_at) == copied[0]
    assert not world.ranges()
    assert bytes(world.sink.data) == world.data


@BOTH_SINK_PATHS
async def test_with_cbt_only_allocated_extents_are_read_and_the_rest_is_zeroed(blocking: bool) -> None:
    data = bytearray(SIZE)
    extents = [Extent(8 * KiB, 8 * KiB), Extent(3 * RANGE + 4 * KiB, 100 * KiB), Extent(4 * RANGE - 4 * KiB, 8 * KiB)]
    rng = random.Random(2)
    for extent in extents:
        data[extent.offset : extent.end] = rng.randbytes(extent.length)
    world = make_world(data=bytes(data), sink=MemorySink(SIZE, fill=0xAA, blocking=blocking), extents=extents)
    await world.plan(command(cbt=True))
    ranges = world.ranges()
    assert [(r.index, r.extents) for r in ranges] == [
        (0, ((8 * KiB, 8 * KiB),)),
        (3, ((3 * RANGE + 4 * KiB, 100 * KiB), (4 * RANGE - 4 * KiB, 4 * KiB))),
        (4, ((4 * RANGE, 4 * KiB),)),
    ]
    assert world.sinks.prepared == [[Extent(RANGE, 2 * RANGE), Extent(5 * RANGE, 16 * KiB)]]
    world.source.reads.clear()
    await world.run_ranges()
    assert bytes(world.sink.data) == bytes(data)
    blocks = {offset // CHUNK for extent in extents for offset in range(extent.offset, extent.end, 4 * KiB)}
    read = {offset // CHUNK for start, length in world.source.reads for offset in range(start, start + length, KiB)}
    assert read == blocks  # the extents' zero-detection blocks, nothing else
    copied = world.publisher.of(DiskCopied)[0]
    assert isinstance(copied, DiskCopied)
    assert copied.bytes_read == copied.bytes_written == 5 * CHUNK
    assert copied.sha256 == disk_checksum(bytes(data), RANGE)
    progress = [m for m in world.publisher.messages if isinstance(m, DiskCopyProgress)]
    assert {p.bytes_to_read for p in progress} == {5 * CHUNK}, "the extents' blocks, known when planned"
    last = progress[-1]
    assert (last.bytes_done, last.bytes_total, last.bytes_read, last.bytes_written) == (
        SIZE,
        SIZE,
        5 * CHUNK,
        5 * CHUNK,
    )


async def test_a_cbt_disk_with_nothing_allocated_is_finished_by_the_coordinator() -> None:
    world = make_world(data=bytes(SIZE), sink=MemorySink(SIZE, fill=1), extents=[])
    await world.plan(command(cbt=True))
    assert not world.ranges()
    copied = world.publisher.of(DiskCopied)
    assert len(copied) == 1 and copied[0].sha256 == disk_checksum(bytes(SIZE), RANGE)  # type: ignore[attr-defined]
    assert bytes(world.sink.data) == bytes(SIZE)


@BOTH_SINK_PATHS
async def test_a_range_that_landed_wrong_is_copied_again_once(blocking: bool) -> None:
    world = make_world(sink=MemorySink(SIZE, garble=2 * RANGE + CHUNK, garble_times=1, blocking=blocking))
    await world.plan(command())
    await world.run_ranges()
    assert bytes(world.sink.data) == world.data
    assert world.sink.writes.count((2 * RANGE + CHUNK, CHUNK)) == 2
    assert len(world.publisher.of(DiskCopied)) == 1


@BOTH_SINK_PATHS
async def test_a_range_that_keeps_landing_wrong_fails_with_a_checksum_mismatch(blocking: bool) -> None:
    world = make_world(sink=MemorySink(SIZE, garble=0, garble_times=2, blocking=blocking))
    await world.plan(command())
    with pytest.raises(PermanentError) as caught:
        await world.run_ranges(world.ranges()[:1])
    assert caught.value.code == "checksum_mismatch"
    assert caught.value.message.startswith("copying range 0 of disk 2000 ([ds1] vm-1/vm-1.vmdk) of VM vm-1 to ")
    assert "differs from the source at offset 0 of range 0" in caught.value.message
    assert "/targets/vm-1.raw" in caught.value.message
    assert world.checkpoints.records[DISK].bytes_done == 0


async def test_a_cancelled_vm_is_neither_planned_nor_copied() -> None:
    world = make_world()
    await world.plan(command())
    world.registry.cancel("m1", "vm-1")
    await world.run_ranges()
    await world.plan(command())
    assert [type(m) for m in world.publisher.messages if not isinstance(m, CopyRange)] == [DiskCopyCanceled] * 7
    assert world.publisher.of(DiskCopyCanceled)[0].message_id == step_id("m1", "vm-1", "disk_copy_canceled", 2000)
    assert world.source.reads == [(0, 4096)]


async def test_cancelling_mid_range_stops_it_without_counting_it() -> None:
    world = make_world()
    await world.plan(command())
    gate = asyncio.Event()
    world.source.gate = gate
    delivery = Delivery()
    handling = asyncio.ensure_future(world.worker(world.ranges()[0], delivery))
    await eventually(lambda: len(world.source.reads) > 1, timeout=1, what="the range reading")
    assert delivery.leased and world.registry.copies_in_flight == 1
    world.registry.cancel("m1", "vm-1")
    await asyncio.wait_for(handling, 1)
    assert isinstance(world.publisher.messages[-1], DiskCopyCanceled)
    assert world.checkpoints.records[DISK].bytes_done == 0
    assert world.sink.open == 0 and not delivery.leased and world.registry.copies_in_flight == 0


async def test_a_disk_whose_finisher_died_is_finished_by_the_redelivered_range() -> None:
    world = make_world()
    await world.plan(command())
    ranges = world.ranges()
    await world.run_ranges(ranges[:-1])
    finished = world.checkpoints.change

    async def crash_before_finishing(disk: DiskId, change: Change) -> tuple[DiskRecord, DiskRecord | None]:
        seen, updated = await finished(disk, change)
        if updated is not None and updated.complete:
            raise ConnectionError("the worker died")
        return seen, updated

    world.checkpoints.change = crash_before_finishing  # type: ignore[method-assign]
    with pytest.raises(TemporaryError):
        await world.run_ranges(ranges[-1:])
    world.checkpoints.change = finished  # type: ignore[method-assign]
    assert not world.publisher.of(DiskCopied)
    await world.run_ranges(ranges[-1:])
    assert len(world.publisher.of(DiskCopied)) == 1


async def test_a_range_off_the_checkpoints_grid_is_refused() -> None:
    world = make_world()
    await world.plan(command())
    wrong = world.ranges()[1]
    for bad in ({"offset": 3}, {"length": 5}, {"extents": ((0, 10),)}, {"extents": ((RANGE + 10, 5), (RANGE, 5))}):
        with pytest.raises(PermanentError) as caught:
            await world.worker(msgspec.structs.replace(wrong, **bad), Delivery())
        assert caught.value.code == "invalid_range"


async def test_a_range_reads_and_writes_where_the_checkpoint_says() -> None:
    world = make_world()
    await world.plan(command())
    planned = command()
    locations = world.checkpoints.records[DISK].locations
    assert locations == CopyLocations(source=planned.source, disk=planned.disk, sink=planned.sink)
    await world.run_ranges()
    assert world.sinks.opened == [planned.sink] * 6
    assert world.readers.asked[1:] == [(planned.source, planned.disk)] * 6  # after the coordinator's probe
    assert bytes(world.sink.data) == world.data and len(world.publisher.of(DiskCopied)) == 1


FORGERIES = {
    "sink": {"sink": SinkLocation(disk_key=2000, kind="file", size_bytes=SIZE, path="/etc/elsewhere.raw")},
    "source": {"source": ProviderSpec(name="vc", type="vsphere", url="https://evil.example.com/sdk", username="u")},
    "disk": {"disk": SourceDisk(key=2000, file_name="[ds1] other/other.vmdk", datacenter="DC0", capacity_bytes=SIZE)},
}


@pytest.mark.parametrize("field", sorted(FORGERIES))
async def test_a_range_naming_other_locations_than_its_checkpoint_is_refused_untouched(
    field: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world()
    await world.plan(command())
    forged = msgspec.structs.replace(world.ranges()[2], **FORGERIES[field])  # type: ignore[arg-type]
    record = world.checkpoints.records[DISK]
    with caplog.at_level(logging.WARNING, logger="ferry_transfer"), pytest.raises(PermanentError) as caught:
        await world.worker(forged, Delivery())
    assert caught.value.code == "range_mismatch"
    assert f"its {field} differ from those of the disk's checkpoint" in caught.value.message
    assert "evil" not in caught.value.message and "/etc/elsewhere" not in caught.value.message
    assert f"refused, its {field} differ" in caplog.text
    assert world.sinks.opened == [] and world.readers.asked[1:] == []  # nothing opened after the probe
    assert world.sink.writes == [] and world.checkpoints.records[DISK] == record
    assert not world.checkpoints.digest_store


async def test_a_range_of_a_checkpoint_without_locations_is_refused() -> None:
    world = make_world()
    await world.plan(command())
    world.checkpoints.records[DISK] = msgspec.structs.replace(world.checkpoints.records[DISK], locations=None)
    with pytest.raises(PermanentError) as caught:
        await world.run_ranges(world.ranges()[:1])
    assert caught.value.code == "checkpoint_without_locations"
    assert "planned by an older version of Ferry); cancel the migration and start it again" in caught.value.message
    assert world.sinks.opened == [] and world.sink.writes == []


async def test_a_redelivered_copy_disk_with_a_moved_sink_moves_the_checkpoint_and_its_ranges() -> None:
    world = make_world()
    await world.plan(command())
    await world.run_ranges(world.ranges()[:2])
    moved = msgspec.structs.replace(command().sink, path="/targets/moved/vm-1.raw")
    world.publisher.messages.clear()
    await world.plan(msgspec.structs.replace(command(), sink=moved))
    record = world.checkpoints.records[DISK]
    assert record.locations is not None and record.locations.sink == moved and record.bytes_done == 2 * RANGE
    assert [r.index for r in world.ranges()] == [2, 3, 4, 5] and all(r.sink == moved for r in world.ranges())
    await world.run_ranges()
    assert world.sinks.opened[2:] == [moved] * 4 and len(world.publisher.of(DiskCopied)) == 1


async def test_a_redelivered_copy_disk_gives_a_checkpoint_without_locations_its_own() -> None:
    world = make_world()
    await world.plan(command())
    world.checkpoints.records[DISK] = msgspec.structs.replace(world.checkpoints.records[DISK], locations=None)
    await world.plan(command())
    planned = command()
    assert world.checkpoints.records[DISK].locations == CopyLocations(
        source=planned.source, disk=planned.disk, sink=planned.sink
    )
    await world.run_ranges(world.ranges()[6:])
    assert bytes(world.sink.data) == world.data and len(world.publisher.of(DiskCopied)) == 1


async def test_a_sink_smaller_than_the_disk_is_refused() -> None:
    world = make_world(sink=MemorySink(SIZE // 2))
    with pytest.raises(PermanentError) as caught:
        await world.plan(command())
    assert caught.value.code == "sink_too_small"
    assert not world.ranges() and DISK not in world.checkpoints.records


async def test_only_vsphere_sources_are_copied() -> None:
    world = make_world()
    with pytest.raises(PermanentError, match="from a kubernetes provider"):
        await world.coordinator(command(source_type="kubernetes"), Delivery())


LOGIN_REFUSED = ProviderError(
    INVALID_LOGIN,
    "vCenter at vc:443 refused the user name 'u' or its password; check both and set them with "
    "`ferry provider update NAME --username USER --password-stdin`",
)


@pytest.mark.parametrize(
    ("where", "error", "expected", "code"),
    [
        ("sources", LOGIN_REFUSED, PermanentError, INVALID_LOGIN),
        ("sources", ProviderError(UNREACHABLE, "vc:443 refused the connection"), TemporaryError, UNREACHABLE),
        ("read", SourceReadError("404 Not Found", url="u", status=404, code="disk_not_found"), PermanentError,
         "disk_not_found"),
        ("read", SourceReadError("503 busy", url="u", status=503, retryable=True), TemporaryError,
         "source_read_failed"),
        ("sinks", SinkUnavailable("sink_unreachable", "not listening", retryable=True), TemporaryError,
         "sink_unreachable"),
        ("sinks", SinkUnavailable("sink_missing", "no directory", retryable=False), PermanentError, "sink_missing"),
    ],
)  # fmt: skip
async def test_coordinator_failures_become_permanent_or_temporary_errors(
    where: str, error: Exception, expected: type[Exception], code: str
) -> None:
    world = make_world()
    if where == "sources":
        world.readers.fail = error
    elif where == "read":
        world.source.fail = error
    else:
        world.sinks.fail = error
    with pytest.raises(expected) as caught:
        await world.coordinator(command(), Delivery())
    mapped = caught.value
    assert isinstance(mapped, PermanentError | TemporaryError) and type(mapped) is expected
    assert mapped.code == code
    assert mapped.message.startswith("copying disk 2000 ([ds1] vm-1/vm-1.vmdk) of VM vm-1: ")
    assert not world.ranges() and DISK not in world.checkpoints.records


@pytest.mark.parametrize(
    ("error", "expected", "code"),
    [
        (NbdConnectionError("connection reset"), TemporaryError, "sink_connection_lost"),
        (OSError(errno.ENOSPC, "No space left on device"), PermanentError, "sink_write_failed"),
        (OSError(errno.EIO, "Input/output error"), TemporaryError, "sink_write_failed"),
        (SourceReadError("503 busy", url="u", status=503, retryable=True), TemporaryError, "source_read_failed"),
    ],
)
async def test_range_failures_become_permanent_or_temporary_errors(
    error: Exception, expected: type[Exception], code: str
) -> None:
    world = make_world()
    await world.plan(command())
    if isinstance(error, SourceReadError):
        world.source.fail = error
    else:
        world.sink.fail = error
    with pytest.raises(expected) as caught:
        await world.run_ranges(world.ranges()[:1])
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert caught.value.message.startswith("copying range 0 of disk 2000")  # type: ignore[attr-defined]
    assert world.checkpoints.records[DISK].bytes_done == 0
    assert world.registry.copies_in_flight == 0 and world.sink.open == 0


async def test_a_range_and_a_disk_waiting_for_past_cancels_hold_their_lease() -> None:
    world = make_world()
    await world.plan(command())
    replaying = CancellationRegistry(replaying=True, replay_wait=5.0)
    ports = CopyPorts(
        sources=world.readers,
        sinks=world.sinks,
        checkpoints=world.checkpoints,
        publisher=world.publisher,
        cancellations=replaying,
        clock=world.clock,
    )
    range_delivery, disk_delivery = Delivery(), Delivery()
    options = RangeOptions(chunk_size=CHUNK)
    handling = asyncio.ensure_future(
        copy_range(world.ranges()[0], range_delivery, ports=ports, copier=copy_one_range, options=options)
    )
    planning = asyncio.ensure_future(
        copy_disk(command(), disk_delivery, ports=ports, cbt=world.cbt, options=CopyOptions(range_size=RANGE))
    )
    await eventually(lambda: range_delivery.leased and disk_delivery.leased, timeout=1, what="both leased")
    assert not handling.done() and not planning.done()
    replaying.cancel("m1", "vm-1")  # replayed
    replaying.mark_caught_up()
    await asyncio.wait_for(asyncio.gather(handling, planning), 1)
    assert not range_delivery.leased and not disk_delivery.leased
    assert isinstance(world.publisher.messages[-1], DiskCopyCanceled)
