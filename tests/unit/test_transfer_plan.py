"""The transfer's pure parts: cutting a disk into ranges, chunks of a range, the range-wise checksum,
the checkpoint's transitions, and paging through CBT answers."""

import random

import msgspec
import pytest

from ferry_shared.migrations import SinkLocation, SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_transfer.adapters.cbt import CbtUnavailable, allocated_extents
from ferry_transfer.domain.checkpoint import (
    CopyLocations,
    DiskRecord,
    RangeCounts,
    finish,
    new_record,
    range_done,
    with_locations,
)
from ferry_transfer.domain.checksum import RangeDigest, combine, disk_checksum, zero_range_digest
from ferry_transfer.domain.chunks import Chunk, chunk_plan
from ferry_transfer.domain.disk_plan import MAX_RANGES, plan_disk, range_size_for
from ferry_transfer.domain.ranges import ZERO_BLOCK, Extent

KiB = 1024
MiB = 1024 * KiB
LOCATIONS = CopyLocations(
    source=ProviderSpec(name="vc", type="vsphere", url="https://vc.example.com/sdk", username="u"),
    disk=SourceDisk(key=2000, file_name="[ds1] vm-1/vm-1.vmdk", datacenter="DC0", capacity_bytes=10 * MiB),
    sink=SinkLocation(disk_key=2000, kind="file", size_bytes=10 * MiB, path="/targets/vm-1.raw"),
)


def test_without_extents_every_range_of_the_grid_is_work() -> None:
    plan = plan_disk(10 * MiB + 4 * KiB, 4 * MiB, None)
    assert [(w.index, w.offset, w.length, w.extents) for w in plan.work] == [
        (0, 0, 4 * MiB, None),
        (1, 4 * MiB, 4 * MiB, None),
        (2, 8 * MiB, 2 * MiB + 4 * KiB, None),
    ]
    assert plan.count == 3 and plan.uncovered() == []
    assert plan_disk(0, MiB, None).work == ()


def test_with_extents_only_touched_ranges_are_work_and_carry_their_part() -> None:
    extents = [Extent(5 * MiB - 100, 200), Extent(9 * MiB, 2 * MiB), Extent(9 * MiB + 10, 5)]
    plan = plan_disk(16 * MiB, 4 * MiB, extents)
    assert [(w.index, w.extents) for w in plan.work] == [
        (1, (Extent(5 * MiB - 4 * KiB, 8 * KiB),)),  # widened to 4 KiB
        (2, (Extent(9 * MiB, 2 * MiB),)),  # overlapping extents merged
    ]
    assert plan.uncovered() == [Extent(0, 4 * MiB), Extent(12 * MiB, 4 * MiB)]
    split = plan_disk(16 * MiB, 4 * MiB, [Extent(3 * MiB, 2 * MiB)])
    assert [(w.index, w.extents) for w in split.work] == [
        (0, (Extent(3 * MiB, MiB),)),
        (1, (Extent(4 * MiB, MiB),)),
    ]
    assert plan_disk(16 * MiB, 4 * MiB, []).uncovered() == [Extent(0, 16 * MiB)]


def test_huge_disks_get_larger_ranges_so_the_checkpoint_stays_small() -> None:
    assert range_size_for(100 * MiB, 16 * MiB) == 16 * MiB
    capacity = MAX_RANGES * 16 * MiB + 1
    assert range_size_for(capacity, 16 * MiB) == 32 * MiB


def test_chunks_read_the_whole_range_or_only_its_extents_merging_close_ones() -> None:
    assert list(chunk_plan(MiB, 3 * MiB, None, 2 * MiB)) == [
        Chunk(MiB, 2 * MiB, (Extent(MiB, 2 * MiB),)),
        Chunk(3 * MiB, MiB, (Extent(3 * MiB, MiB),)),
    ]
    extents = [Extent(0, 4 * KiB), Extent(100 * KiB, 4 * KiB), Extent(MiB - 4 * KiB, 8 * KiB)]
    assert list(chunk_plan(0, 4 * MiB, extents, MiB, merge_gap=256 * KiB)) == [
        Chunk(0, MiB, (Extent(0, 104 * KiB), Extent(MiB - 4 * KiB, 4 * KiB))),
        Chunk(MiB, MiB, (Extent(MiB, 4 * KiB),)),
        Chunk(2 * MiB, MiB, ()),
        Chunk(3 * MiB, MiB, ()),
    ]
    aligned = chunk_plan(0, MiB, [Extent(70 * KiB, 4 * KiB), Extent(500 * KiB, 20 * KiB)], MiB, 0, align=64 * KiB)
    assert list(aligned) == [Chunk(0, MiB, (Extent(64 * KiB, 64 * KiB), Extent(448 * KiB, 128 * KiB)))]


def sample_disk(size: int) -> bytes:
    rng = random.Random(7)
    data = bytearray(size)
    for _ in range(12):
        start = rng.randrange(0, size)
        length = rng.randrange(1, 300 * KiB)
        data[start : start + length] = rng.randbytes(len(data[start : start + length]))
    return bytes(data)


@pytest.mark.parametrize("chunk", [ZERO_BLOCK, 3 * ZERO_BLOCK, MiB])
def test_the_streaming_range_digest_does_not_depend_on_chunking(chunk: int) -> None:
    size = 3 * MiB + 1000
    data = sample_disk(size)
    range_size = 2 * MiB
    parts = []
    for offset in range(0, size, range_size):
        digest = RangeDigest(offset)
        end = min(size, offset + range_size)
        for start in range(offset, end, chunk):
            piece = data[start : min(end, start + chunk)]
            if any(piece):
                digest.add(piece)
            else:
                digest.add_zero(len(piece))  # known zero, never read
        parts.append((offset, end - offset, digest.digest()))
    assert combine(parts) == disk_checksum(data, range_size)


def test_the_checksum_tells_data_apart_and_zero_ranges_have_a_known_digest() -> None:
    data = sample_disk(2 * MiB)
    changed = bytearray(data)
    changed[-1] ^= 1
    assert disk_checksum(data, MiB) != disk_checksum(bytes(changed), MiB)
    assert disk_checksum(data, MiB) != disk_checksum(data, 2 * MiB)  # the range size is part of it
    digest = RangeDigest(MiB)
    digest.add(bytes(MiB))
    assert digest.digest() == zero_range_digest(MiB, MiB)


def test_a_range_is_counted_once_and_progress_is_throttled() -> None:
    plan = plan_disk(10 * MiB, 4 * MiB, [Extent(0, MiB), Extent(9 * MiB, MiB)])
    record = new_record(plan, LOCATIONS, now=100.0)
    assert (record.bytes_done, record.zero_bytes) == (4 * MiB, 4 * MiB)  # range 1 needs no copy
    assert list(record.pending()) == [0, 2] and record.is_done(1)
    counts = RangeCounts(MiB, MiB, 3 * MiB)
    first = range_done(record, 0, counts, now=100.2, progress_interval=0.5)
    assert first is not None
    record, report = first
    assert not report and record.bytes_done == 8 * MiB and record.bytes_read == MiB
    assert range_done(record, 0, counts, now=101, progress_interval=0.5) is None  # a redelivery
    assert not record.complete
    last = range_done(record, 2, RangeCounts(MiB, MiB, MiB), now=101, progress_interval=0.5)
    assert last is not None
    record, report = last
    assert record.complete and not report  # the finisher reports the end itself
    finished = finish(record, "abc", now=102.5)
    assert finished is not None and finished.finished and finished.seconds == 2.5
    assert finish(finished, "other", now=103) is None
    with pytest.raises(ValueError, match="outside"):
        range_done(record, 3, counts, now=1, progress_interval=1)


def test_a_checkpoint_keeps_its_copy_locations_and_names_the_ones_that_differ() -> None:
    record = new_record(plan_disk(3 * MiB, MiB, None), LOCATIONS, now=0.0)
    assert record.locations == LOCATIONS
    stored = msgspec.json.decode(msgspec.json.encode(record), type=DiskRecord)
    assert stored == record
    elsewhere = msgspec.structs.replace(LOCATIONS.sink, path="/elsewhere.raw")
    other_disk = msgspec.structs.replace(LOCATIONS.disk, file_name="[ds1] other/other.vmdk")
    assert LOCATIONS.differences(LOCATIONS) == []
    assert LOCATIONS.differences(msgspec.structs.replace(LOCATIONS, sink=elsewhere)) == ["sink"]
    assert LOCATIONS.differences(msgspec.structs.replace(LOCATIONS, disk=other_disk, sink=elsewhere)) == [
        "disk",
        "sink",
    ]
    moved = msgspec.structs.replace(LOCATIONS, sink=elsewhere)
    assert with_locations(record, LOCATIONS) is None
    relocated = with_locations(record, moved)
    assert relocated is not None and relocated.locations == moved and relocated.done == record.done


def test_a_checkpoint_stored_before_locations_were_kept_still_decodes_without_them() -> None:
    record = new_record(plan_disk(3 * MiB, MiB, None), LOCATIONS, now=0.0)
    older = msgspec.json.encode({k: v for k, v in msgspec.structs.asdict(record).items() if k != "locations"})
    decoded = msgspec.json.decode(older, type=DiskRecord)
    assert decoded.locations is None and decoded.bytes_done == record.bytes_done


def test_progress_is_reported_once_the_interval_passed() -> None:
    record = new_record(plan_disk(3 * MiB, MiB, None), LOCATIONS, now=0.0)
    decided = range_done(record, 0, RangeCounts(MiB, MiB, 0), now=0.6, progress_interval=0.5)
    assert decided is not None and decided[1] and decided[0].reported == MiB
    again = range_done(decided[0], 1, RangeCounts(MiB, MiB, 0), now=0.7, progress_interval=0.5)
    assert again is not None and not again[1] and again[0].reported == MiB


def test_cbt_answers_are_paged_until_the_end_of_the_disk() -> None:
    answers = {0: (0, 4 * MiB, [Extent(0, MiB)]), 4 * MiB: (4 * MiB, 6 * MiB, [Extent(5 * MiB, 64 * KiB)])}
    asked: list[int] = []

    def query(start: int) -> tuple[int, int, list[Extent]]:
        asked.append(start)
        return answers[start]

    assert allocated_extents(query, 10 * MiB) == [Extent(0, MiB), Extent(5 * MiB, 64 * KiB)]
    assert asked == [0, 4 * MiB]
    with pytest.raises(CbtUnavailable, match="asked from offset 0"):
        allocated_extents(lambda start: (0, 0, []), MiB)


def test_the_bytes_to_read_are_the_whole_disk_or_its_extents_widened_to_blocks() -> None:
    assert plan_disk(10 * MiB + 4 * KiB, 4 * MiB, None).bytes_to_read(64 * KiB) == 10 * MiB + 4 * KiB
    extents = [Extent(4 * KiB, 4 * KiB), Extent(40 * KiB, 4 * KiB), Extent(4 * MiB - 4 * KiB, 8 * KiB)]
    plan = plan_disk(8 * MiB, 4 * MiB, extents)
    assert plan.bytes_to_read(64 * KiB) == 3 * 64 * KiB, "two extents in one block count it once; one over a range edge"
    assert plan_disk(8 * MiB, 4 * MiB, []).bytes_to_read(64 * KiB) == 0


def test_a_checkpoint_knows_its_bytes_to_read_and_an_older_one_says_it_does_not() -> None:
    plan = plan_disk(8 * MiB, 4 * MiB, [Extent(0, MiB)])
    record = new_record(plan, LOCATIONS, 0.0, align=64 * KiB)
    assert (record.to_read, record.bytes_done) == (MiB, 4 * MiB)
    older = msgspec.json.encode({k: v for k, v in msgspec.structs.asdict(record).items() if k != "to_read"})
    assert msgspec.json.decode(older, type=DiskRecord).to_read is None
