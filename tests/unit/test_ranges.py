"""The copier's disk geometry: range plans, extent clipping and zero-run detection."""

import os

import pytest

from ferry_transfer.domain.ranges import (
    ALIGNMENT,
    Extent,
    Run,
    Segment,
    ZeroBlocks,
    normalize_extents,
    plan_segments,
    split_ranges,
    zero_runs,
)

KiB = 1024
MiB = 1024 * KiB


def test_whole_disk_is_cut_into_ranges_of_the_given_size_with_a_short_last_one() -> None:
    ranges = split_ranges(10 * MiB + 512, range_size=4 * MiB)
    assert ranges == [Extent(0, 4 * MiB), Extent(4 * MiB, 4 * MiB), Extent(8 * MiB, 2 * MiB + 512)]


def test_default_range_size_is_64_mib() -> None:
    assert split_ranges(129 * MiB) == [Extent(0, 64 * MiB), Extent(64 * MiB, 64 * MiB), Extent(128 * MiB, MiB)]


def test_empty_disk_has_no_ranges() -> None:
    assert split_ranges(0) == []
    assert plan_segments(0) == []


def test_range_size_must_be_a_multiple_of_the_alignment() -> None:
    with pytest.raises(ValueError, match="multiple of 4096"):
        split_ranges(MiB, range_size=5000)


def test_extents_are_widened_to_4k_and_clipped_to_the_disk() -> None:
    extents = [Extent(100, 10), Extent(8 * KiB - 1, 2), Extent(-4096, 8192), Extent(MiB - 10, 100)]
    assert normalize_extents(extents, MiB) == [Extent(0, 12 * KiB), Extent(MiB - ALIGNMENT, ALIGNMENT)]


def test_overlapping_and_touching_extents_merge_in_offset_order() -> None:
    extents = [Extent(64 * KiB, 64 * KiB), Extent(0, 64 * KiB), Extent(96 * KiB, 64 * KiB), Extent(MiB, KiB)]
    assert normalize_extents(extents, 2 * MiB) == [Extent(0, 160 * KiB), Extent(MiB, 4 * KiB)]


def test_extents_beyond_the_disk_and_empty_ones_are_dropped() -> None:
    assert normalize_extents([Extent(2 * MiB, MiB), Extent(4096, 0)], MiB) == []


def test_extent_ranges_are_cut_on_a_fixed_grid() -> None:
    ranges = split_ranges(16 * MiB, [Extent(3 * MiB, 6 * MiB)], range_size=4 * MiB)
    assert ranges == [Extent(3 * MiB, MiB), Extent(4 * MiB, 4 * MiB), Extent(8 * MiB, MiB)]
    assert all(extent.offset % ALIGNMENT == 0 for extent in ranges)


def test_plan_covers_the_disk_with_gaps_as_zero_segments() -> None:
    size = 10 * MiB + 100
    plan = plan_segments(size, [Extent(MiB, MiB), Extent(9 * MiB, 10)], range_size=4 * MiB)
    assert plan == [
        Segment(0, MiB, data=False),
        Segment(MiB, MiB, data=True),
        Segment(2 * MiB, 2 * MiB, data=False),
        Segment(4 * MiB, 4 * MiB, data=False),
        Segment(8 * MiB, MiB, data=False),
        Segment(9 * MiB, 4 * KiB, data=True),
        Segment(9 * MiB + 4 * KiB, MiB - 4 * KiB + 100, data=False),
    ]
    assert [s.end for s in plan[:-1]] == [s.offset for s in plan[1:]]


def test_plan_without_extents_is_all_data() -> None:
    assert plan_segments(5 * MiB, range_size=4 * MiB) == [Segment(0, 4 * MiB, True), Segment(4 * MiB, MiB, True)]


def test_zero_runs_alternate_at_block_granularity() -> None:
    block = 64 * KiB
    data = bytearray(6 * block + 10)
    data[block + 5] = 1  # block 1
    data[3 * block : 5 * block] = os.urandom(2 * block)  # blocks 3 and 4
    data[-1] = 7  # the short last block
    assert zero_runs(bytes(data)) == [
        Run(0, block, zero=True),
        Run(block, block, zero=False),
        Run(2 * block, block, zero=True),
        Run(3 * block, 2 * block, zero=False),
        Run(5 * block, block, zero=True),
        Run(6 * block, 10, zero=False),
    ]


def test_a_block_of_zeroes_with_one_late_non_zero_byte_is_data() -> None:
    data = bytearray(8 * KiB)
    data[-1] = 1
    assert zero_runs(bytes(data), block_size=4 * KiB) == [Run(0, 4 * KiB, True), Run(4 * KiB, 4 * KiB, False)]


def test_all_zero_and_all_random_buffers_are_one_run() -> None:
    blocks = ZeroBlocks(4 * KiB)
    assert blocks.runs(bytes(MiB + 1)) == [Run(0, MiB + 1, True)]
    assert blocks.is_zero(bytes(MiB + 1))
    noise = os.urandom(MiB)
    assert blocks.runs(noise) == [Run(0, MiB, False)]
    assert not blocks.is_zero(noise)
    assert blocks.runs(b"") == []
