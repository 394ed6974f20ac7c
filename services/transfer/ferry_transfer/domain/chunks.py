"""How a worker walks one range: chunks it reads, writes and checks one after the other.

A range is cut into chunks of at most ``chunk_size`` bytes on a grid from the range's start,
so a chunk always starts on a zero-detection block boundary. Each chunk lists the source
reads that fill it: the whole chunk when the range has no extent list, else the range's
extents clipped to the chunk, where extents closer than ``merge_gap`` are read as one (a
small gap costs less to read than another request). A chunk with no read is known zero.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .ranges import Extent

MERGE_GAP = 256 * 1024
"""Extents of one chunk closer than this are read with one request (the gap reads as zeroes)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """``[offset, offset + length)`` of the disk, filled by ``reads`` (absolute); no reads: all zero."""

    offset: int
    length: int
    reads: tuple[Extent, ...]

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def read_bytes(self) -> int:
        return sum(read.length for read in self.reads)


def chunk_plan(
    offset: int,
    length: int,
    extents: Sequence[Extent] | None,
    chunk_size: int,
    merge_gap: int = MERGE_GAP,
    align: int = 1,
) -> Iterator[Chunk]:
    """The chunks of the range ``[offset, offset + length)`` in order (see the module docstring).

    Reads are widened to multiples of ``align`` (clipped to the chunk), so that everything
    between them is whole ``align`` blocks.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk size must be positive, got {chunk_size}")
    end = offset + length
    for start in range(offset, end, chunk_size):
        stop = min(end, start + chunk_size)
        if extents is None:
            yield Chunk(start, stop - start, (Extent(start, stop - start),))
            continue
        reads: list[Extent] = []
        for extent in extents:
            a = max(start, extent.offset // align * align)
            b = min(stop, -(-extent.end // align) * align)
            if b <= a:
                continue
            if reads and a - reads[-1].end < merge_gap:
                reads[-1] = Extent(reads[-1].offset, max(b, reads[-1].end) - reads[-1].offset)
            else:
                reads.append(Extent(a, b - a))
        yield Chunk(start, stop - start, tuple(reads))
