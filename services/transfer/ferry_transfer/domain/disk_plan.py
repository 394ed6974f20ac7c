"""How one disk is cut into ranges, the unit of transfer work, and which ranges hold data.

A disk of ``capacity`` bytes is cut on a fixed grid of ``range_size`` into ranges
``0 … n-1`` (the last one may be short). Without CBT every range is work and is read
whole. With the allocated extents CBT reports, a range is work only when an extent
touches it, and it carries those extents (clipped to it, 4 KiB aligned): the rest of the
range is written as zeroes, and ranges without any extent are never read — their bytes
are :meth:`DiskPlan.uncovered`, zeroed once by the coordinator where the sink needs it.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from .ranges import Extent, normalize_extents

MAX_RANGES = 1 << 20
"""Most ranges one disk is cut into: keeps its checkpoint (two bitmaps) far below the 1 MB KV value limit."""


def range_size_for(capacity: int, wanted: int) -> int:
    """``wanted``, doubled until the disk has at most :data:`MAX_RANGES` ranges."""
    if wanted <= 0:
        raise ValueError(f"range size must be positive, got {wanted}")
    size = wanted
    while -(-capacity // size) > MAX_RANGES:
        size *= 2
    return size


@dataclass(frozen=True, slots=True)
class RangeWork:
    """Range ``index``: ``[offset, offset + length)``; ``extents`` None means read it all."""

    index: int
    offset: int
    length: int
    extents: tuple[Extent, ...] | None = None

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class DiskPlan:
    """The ranges of one disk that must be copied (``work``, in index order)."""

    capacity: int
    range_size: int
    work: tuple[RangeWork, ...]

    @property
    def count(self) -> int:
        """How many ranges the grid has (work or not)."""
        return -(-self.capacity // self.range_size)

    def length_of(self, index: int) -> int:
        return min(self.range_size, self.capacity - index * self.range_size)

    def work_indexes(self) -> set[int]:
        return {item.index for item in self.work}

    def bytes_to_read(self, align: int = 1) -> int:
        """Bytes the workers read from the source: whole work ranges, or their extents widened
        to multiples of ``align`` (as the range copier reads them; gaps it merges may add a little)."""
        total = 0
        for item in self.work:
            if item.extents is None:
                total += item.length
                continue
            covered = item.offset  # widened extents may share a block: count it once
            for extent in item.extents:
                start = max(covered, extent.offset // align * align)
                end = min(item.end, -(-extent.end // align) * align)
                total += max(0, end - start)
                covered = max(covered, end)
        return total

    def uncovered(self) -> list[Extent]:
        """The parts of the disk no work range covers, merged: they must read as zeroes on the target."""
        gaps: list[Extent] = []
        position = 0
        for item in (*self.work, RangeWork(self.count, self.capacity, 0)):
            if item.offset > position:
                gaps.append(Extent(position, item.offset - position))
            position = item.end
        return gaps


def plan_disk(capacity: int, range_size: int, allocated: Sequence[Extent] | None) -> DiskPlan:
    """Cut the disk on the ``range_size`` grid; with ``allocated`` extents, keep only ranges they touch."""
    if capacity < 0:
        raise ValueError(f"disk capacity must not be negative, got {capacity}")
    if allocated is None:
        work = tuple(
            RangeWork(index, offset, min(range_size, capacity - offset))
            for index, offset in enumerate(range(0, capacity, range_size))
        )
        return DiskPlan(capacity, range_size, work)
    per_range: dict[int, list[Extent]] = {}
    for piece in _cut(normalize_extents(allocated, capacity), range_size):
        per_range.setdefault(piece.offset // range_size, []).append(piece)
    work = tuple(
        RangeWork(index, index * range_size, min(range_size, capacity - index * range_size), tuple(pieces))
        for index, pieces in sorted(per_range.items())
    )
    return DiskPlan(capacity, range_size, work)


def _cut(extents: Iterable[Extent], grid: int) -> Iterator[Extent]:
    """Split extents at multiples of ``grid``."""
    for extent in extents:
        start = extent.offset
        while start < extent.end:
            end = min(extent.end, (start // grid + 1) * grid)
            yield Extent(start, end - start)
            start = end
