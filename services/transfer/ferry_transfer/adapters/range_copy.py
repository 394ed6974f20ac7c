"""Copies one range of a disk: chunk by chunk, read, digest, write, read back and compare.

Each chunk (:mod:`ferry_transfer.domain.chunks`) is read from the source — all of it, or
with CBT only its extents widened to whole zero-detection blocks — one read at a time:
the bytes are split into zero and data runs while the range's digest
(:mod:`ferry_transfer.domain.checksum`) is fed, written (data, or holes / WRITE_ZEROES for
zero runs), then read back from the sink and compared byte for byte (in pieces of at
most :data:`READ_BACK` bytes) before the next read. Parts known to be zero (between
extents) are never read: they are zeroed and checked with :meth:`DiskSink.reads_zero`,
which costs a file no read at all. So memory per range is about one chunk (plus the
reader's own buffering) whatever the range or disk size, and a slow sink slows the reads
down instead of filling buffers. The caller makes the range durable
(:meth:`DiskSink.finish`) before it counts as done. A part that reads back different makes the whole range be
copied once more; a second difference is a :class:`~ferry_transfer.domain.errors.RangeMismatch`.

:func:`copy_range` is the handlers' range copier (:class:`~ferry_transfer.domain.ports.RangeCopier`).
"""

import asyncio
import logging
from dataclasses import dataclass

from ferry_transfer.domain.checkpoint import RangeCounts
from ferry_transfer.domain.checksum import RangeDigest
from ferry_transfer.domain.chunks import chunk_plan
from ferry_transfer.domain.copies import RangeCopy
from ferry_transfer.domain.disk_plan import RangeWork
from ferry_transfer.domain.errors import RangeMismatch
from ferry_transfer.domain.ports import DiskSink, DiskSource
from ferry_transfer.domain.ranges import ZERO_BLOCK, Run

log = logging.getLogger(__name__)

READ_BACK = 4 * 1024 * 1024
"""Largest piece read back from the sink at once to compare with what was written: a whole
default chunk, so a dense chunk is read back with one call (one thread hop for a file)."""


class _Differs(Exception):  # noqa: N818
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


async def copy_range(
    source: DiskSource, sink: DiskSink, work: RangeWork, *, chunk_size: int, repairs: int = 1
) -> RangeCopy:
    """Copy ``work`` from ``source`` to ``sink`` and check it (see the module docstring).

    The counts are those of the copy that stood (a range's bytes are counted once).
    """
    if chunk_size <= 0 or chunk_size % ZERO_BLOCK:
        raise ValueError(f"chunk size must be a positive multiple of {ZERO_BLOCK}, got {chunk_size}")
    for attempt in range(1, repairs + 2):
        try:
            digest, counts = await _copy_once(source, sink, work, chunk_size)
        except _Differs as differs:
            if attempt > repairs:
                raise RangeMismatch(work, differs.offset, attempt) from None
            log.warning(
                "range %d: the target differs from what was read at offset %d; copying the range again",
                work.index,
                differs.offset,
            )
            continue
        return RangeCopy(digest, counts, attempt)
    raise AssertionError("unreachable")


async def _copy_once(source: DiskSource, sink: DiskSink, work: RangeWork, chunk_size: int) -> tuple[bytes, RangeCounts]:
    digest = RangeDigest(work.offset)
    counts = _Counts()
    for chunk in chunk_plan(work.offset, work.length, work.extents, chunk_size, align=ZERO_BLOCK):
        position = chunk.offset
        for part in chunk.reads:
            await _zero(sink, digest, counts, position, part.offset - position)
            data = await source.read(part.offset, part.length)
            counts.read += len(data)
            runs = await asyncio.to_thread(digest.add, data)
            for run in runs:
                if run.zero:
                    await sink.zero(part.offset + run.offset, run.length)
                    counts.zero += run.length
                else:
                    await sink.write(part.offset + run.offset, memoryview(data)[run.offset : run.end])
                    counts.written += run.length
            await _check(sink, part.offset, data, runs)
            position = part.end
        await _zero(sink, digest, counts, position, chunk.end - position)
    return digest.digest(), RangeCounts(counts.read, counts.written, counts.zero)


@dataclass
class _Counts:
    read: int = 0
    written: int = 0
    zero: int = 0


async def _zero(sink: DiskSink, digest: RangeDigest, counts: _Counts, offset: int, length: int) -> None:
    """A part known to be zero (never read): zero it on the sink and check it reads so."""
    if length <= 0:
        return
    digest.add_zero(length)
    await sink.zero(offset, length)
    counts.zero += length
    if not await sink.reads_zero(offset, length):
        raise _Differs(offset)


async def _check(sink: DiskSink, offset: int, data: bytes, runs: list[Run]) -> None:
    """Read back what was written at ``offset`` and compare: data runs byte for byte (at most
    :data:`READ_BACK` bytes at a time), zero runs with :meth:`DiskSink.reads_zero`."""
    for run in runs:
        where = offset + run.offset
        if run.zero:
            if not await sink.reads_zero(where, run.length):
                raise _Differs(where)
            continue
        for start in range(run.offset, run.end, READ_BACK):
            length = min(READ_BACK, run.end - start)
            expected = data if (start, length) == (0, len(data)) else data[start : start + length]
            if await sink.read(offset + start, length) != expected:
                raise _Differs(offset + start)
