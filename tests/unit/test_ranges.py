"""Disk geometry: extent clipping and zero-run detection."""

import os

import pytest

from ferry_transfer.domain.ranges import (
    ALIGNMENT,
    Extent,
    Run,
    ZeroBlocks,
    normalize_extents,
)

KiB = 1024
MiB = 1024 * KiB


def test_extents_are_widened_to_4k_and_clipped_to_the_disk() -> None:
    extents = [Extent(100, 10), Extent(8 * KiB - 1, 2), Extent(-4096, 8192), Extent(MiB - 10, 100)]
    assert normalize_extents(extents, MiB) == [Extent(0, 12 * KiB), Extent(MiB - ALIGNMENT, ALIGNMENT)]


def test_overlapping_and_touching_extents_merge_in_offset_order() -> None:
    extents = [Extent(64 * KiB, 64 * KiB), Extent(0, 64 * KiB), Extent(96 * KiB, 64 * KiB), Extent(MiB, KiB)]
    assert normalize_extents(extents, 2 * MiB) == [Extent(0, 160 * KiB), Extent(MiB, 4 * KiB)]


def test_extents_beyond_the_disk_and_empty_ones_are_dropped() -> None:
    assert normalize_extents([Extent(2 * MiB, MiB), Extent(4096, 0)], MiB) == []


def test_zero_runs_alternate_at_block_granularity() -> None:
    block = 64 * KiB
    data = bytearray(6 * block + 10)
    data[block + 5] = 1  # block 1
    data[3 * block : 5 * block] = os.urandom(2 * block)  # blocks 3 and 4
    data[-1] = 7  # the short last block
    assert ZeroBlocks(block).runs(bytes(data)) == [
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
    assert ZeroBlocks(4 * KiB).runs(bytes(data)) == [Run(0, 4 * KiB, True), Run(4 * KiB, 4 * KiB, False)]


def test_all_zero_and_all_random_buffers_are_one_run() -> None:
    blocks = ZeroBlocks(4 * KiB)
    assert blocks.runs(bytes(MiB + 1)) == [Run(0, MiB + 1, True)]
    assert blocks.is_zero(bytes(MiB + 1))
    noise = os.urandom(MiB)
    assert blocks.runs(noise) == [Run(0, MiB, False)]
    assert not blocks.is_zero(noise)
    assert blocks.runs(b"") == []


def test_runs_cover_only_the_first_length_bytes_of_a_reused_buffer() -> None:
    buffer = bytearray(os.urandom(3 * 4 * KiB))  # an earlier chunk's data behind the new one
    buffer[: 4 * KiB + 100] = bytes(4 * KiB + 100)
    blocks = ZeroBlocks(4 * KiB)
    assert blocks.runs(buffer, 4 * KiB + 100) == [Run(0, 4 * KiB + 100, True)]
    assert blocks.runs(buffer, 0) == []
    with pytest.raises(ValueError, match="outside"):
        blocks.runs(buffer, len(buffer) + 1)
