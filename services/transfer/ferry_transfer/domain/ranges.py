"""Disk geometry: extents, which byte ranges to read, and which bytes are zero.

Pure functions, no I/O. :func:`normalize_extents` aligns and merges the allocated extents
vSphere reports (CBT ``QueryChangedDiskAreas``) for the range plan
(:mod:`.disk_plan`); :class:`ZeroBlocks` splits every buffer read into data runs and zero
runs so that zeroes become holes on the target. :func:`plan_segments` is the whole-disk
plan of the single-process copier (:mod:`ferry_transfer.adapters.copier`).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
ALIGNMENT = 4 * KiB
"""Every range starts on (and, except at the end of the disk, ends on) this boundary."""
DEFAULT_RANGE_SIZE = 64 * MiB
DEFAULT_ZERO_BLOCK = 64 * KiB


@dataclass(frozen=True, slots=True)
class Extent:
    """``length`` bytes from ``offset``."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class Segment:
    """One step of a copy plan: a range to read (``data``) or one known to be zero (a gap between extents)."""

    offset: int
    length: int
    data: bool

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class Run:
    """Bytes ``[offset, offset + length)`` of a buffer, all zero or not (``zero``)."""

    offset: int
    length: int
    zero: bool

    @property
    def end(self) -> int:
        return self.offset + self.length


def _check_multiple(name: str, value: int, alignment: int) -> None:
    if value <= 0 or value % alignment:
        raise ValueError(f"{name} must be a positive multiple of {alignment} bytes, got {value}")


def normalize_extents(extents: Iterable[Extent], size: int, alignment: int = ALIGNMENT) -> list[Extent]:
    """Clip extents to ``[0, size)``, widen them to ``alignment``, sort and merge overlapping or touching ones."""
    if size < 0:
        raise ValueError(f"disk size must not be negative, got {size}")
    _check_multiple("alignment", alignment, 1)
    widened: list[tuple[int, int]] = []
    for extent in extents:
        if extent.length < 0:
            raise ValueError(f"extent length must not be negative: {extent}")
        start = max(0, extent.offset) // alignment * alignment
        end = min(size, -(-extent.end // alignment) * alignment)
        if end > start:
            widened.append((start, end))
    widened.sort()
    merged: list[Extent] = []
    for start, end in widened:
        if merged and start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Extent(last.offset, max(last.end, end) - last.offset)
        else:
            merged.append(Extent(start, end - start))
    return merged


def split_ranges(
    size: int,
    extents: Iterable[Extent] | None = None,
    range_size: int = DEFAULT_RANGE_SIZE,
    alignment: int = ALIGNMENT,
) -> list[Extent]:
    """The ranges to read: the whole disk (or the normalized extents) cut at multiples of ``range_size``.

    Cuts fall on a fixed grid (``k * range_size``), so the plan does not depend on how the
    extents were reported.
    """
    _check_multiple("range_size", range_size, alignment)
    areas = [Extent(0, size)] if extents is None else normalize_extents(extents, size, alignment)
    ranges: list[Extent] = []
    for area in areas:
        start = area.offset
        while start < area.end:
            end = min(area.end, (start // range_size + 1) * range_size)
            ranges.append(Extent(start, end - start))
            start = end
    return ranges


def plan_segments(
    size: int,
    extents: Iterable[Extent] | None = None,
    range_size: int = DEFAULT_RANGE_SIZE,
    alignment: int = ALIGNMENT,
) -> list[Segment]:
    """Cover ``[0, size)`` in offset order: the ranges of :func:`split_ranges`, and the gaps between them as zero.

    Gaps are cut on the same grid, so each segment is at most ``range_size`` long.
    """
    data = split_ranges(size, extents, range_size, alignment)
    segments: list[Segment] = []
    position = 0
    for extent in [*data, Extent(size, 0)]:
        for gap in split_ranges(extent.offset, [Extent(position, extent.offset - position)], range_size, 1):
            segments.append(Segment(gap.offset, gap.length, data=False))
        if extent.length:
            segments.append(Segment(extent.offset, extent.length, data=True))
        position = extent.end
    return segments


class ZeroBlocks:
    """Finds all-zero blocks in buffers; keeps one preallocated zero block to compare against.

    Comparing ``bytes`` slices with ``==`` is a ``memcmp``: about 20 GB/s on zeroes, and a
    non-zero first byte rejects a block at once (measured on the workplace machine against
    ``bytes.count(0)``, ~1.6 GB/s, and ``memoryview ==``, ~0.4 GB/s).
    """

    def __init__(self, block_size: int = DEFAULT_ZERO_BLOCK) -> None:
        _check_multiple("block_size", block_size, 1)
        self.block_size = block_size
        self._zero = bytes(block_size)

    def is_zero(self, data: bytes | bytearray) -> bool:
        """Whether every byte of ``data`` is zero."""
        block = self.block_size
        for start in range(0, len(data), block):
            chunk = data[start : start + block]
            if chunk[0] != 0 or chunk != self._zero[: len(chunk)]:
                return False
        return True

    def runs(self, data: bytes | bytearray) -> list[Run]:
        """Split ``data`` into alternating data and zero runs, at block granularity (the last block may be short)."""
        block = self.block_size
        zero = self._zero
        runs: list[Run] = []
        size = len(data)
        for start in range(0, size, block):
            length = min(block, size - start)
            # A block of data mostly has a non-zero first byte: rejected without copying it.
            is_zero = data[start] == 0 and data[start : start + length] == (zero if length == block else zero[:length])
            if runs and runs[-1].zero == is_zero:
                last = runs[-1]
                runs[-1] = Run(last.offset, last.length + length, is_zero)
            else:
                runs.append(Run(start, length, is_zero))
        return runs


def zero_runs(data: bytes, block_size: int = DEFAULT_ZERO_BLOCK) -> list[Run]:
    """:meth:`ZeroBlocks.runs` with a fresh zero block (keep a :class:`ZeroBlocks` for repeated calls)."""
    return ZeroBlocks(block_size).runs(data)


def total_length(extents: Sequence[Extent] | Sequence[Segment]) -> int:
    return sum(extent.length for extent in extents)
