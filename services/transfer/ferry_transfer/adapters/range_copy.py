"""Copies one range of a disk: chunk by chunk, read, digest, write, read back and compare.

Each chunk (:mod:`ferry_transfer.domain.chunks`) is read from the source — all of it, or
with CBT only its extents widened to whole zero-detection blocks — one read at a time, into
a buffer reused from range to range (:class:`~.chunk_buffers.ChunkBuffers`): the bytes are
split into zero and data runs while the range's digest (:mod:`ferry_transfer.domain.checksum`)
is fed, written (data, or holes / WRITE_ZEROES for zero runs), then read back from the sink
and compared by XXH3-128 digest with what was written, before the next read. Parts known to
be zero (between extents) are never read: they are zeroed and checked with
:meth:`DiskSink.reads_zero`, which costs a file no read at all.

A sink with blocking calls (:attr:`DiskSink.blocking`: a local file) gets a chunk's digest,
writes and read-back in one worker thread: two thread hops per chunk (the source's read and
this), no allocation. Other sinks (NBD) are written and read back with their async calls.
So memory per range is about two chunks (plus the reader's own buffering) whatever the
range or disk size, and a slow sink slows the reads down instead of filling buffers. The
caller makes the range durable (:meth:`DiskSink.finish`) before it counts as done. A part
that reads back different makes the whole range be copied once more; a second difference
is a :class:`~ferry_transfer.domain.errors.RangeMismatch`.

:func:`copy_range` is the handlers' range copier (:class:`~ferry_transfer.domain.ports.RangeCopier`).
"""

import asyncio
import logging
from dataclasses import dataclass

import xxhash

from ferry_transfer.domain.checkpoint import RangeCounts
from ferry_transfer.domain.checksum import RangeDigest
from ferry_transfer.domain.chunks import chunk_plan
from ferry_transfer.domain.copies import RangeCopy
from ferry_transfer.domain.disk_plan import RangeWork
from ferry_transfer.domain.errors import RangeMismatch
from ferry_transfer.domain.ports import BlockingSink, DiskSink, DiskSource
from ferry_transfer.domain.ranges import ZERO_BLOCK, Run

from .chunk_buffers import ChunkBuffers

log = logging.getLogger(__name__)

READ_BACK = 4 * 1024 * 1024
"""Largest piece an NBD sink reads back at once to compare with what was written: a whole
default chunk, so a dense chunk is read back with one request."""


class _Differs(Exception):  # noqa: N818
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


async def copy_range(
    source: DiskSource,
    sink: DiskSink,
    work: RangeWork,
    *,
    chunk_size: int,
    repairs: int = 1,
    buffers: ChunkBuffers | None = None,
) -> RangeCopy:
    """Copy ``work`` from ``source`` to ``sink`` and check it (see the module docstring).

    ``buffers`` lends the chunk buffers (fresh ones for this range without it). The counts
    are those of the copy that stood (a range's bytes are counted once).
    """
    if chunk_size <= 0 or chunk_size % ZERO_BLOCK:
        raise ValueError(f"chunk size must be a positive multiple of {ZERO_BLOCK}, got {chunk_size}")
    for attempt in range(1, repairs + 2):
        try:
            with (buffers or ChunkBuffers(keep=0)).lease(chunk_size, 2) as (data, back):
                digest, counts = await _copy_once(source, sink, work, chunk_size, data, back)
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


@dataclass
class _Counts:
    read: int = 0
    written: int = 0
    zero: int = 0


async def _copy_once(
    source: DiskSource, sink: DiskSink, work: RangeWork, chunk_size: int, buffer: bytearray, back: bytearray
) -> tuple[bytes, RangeCounts]:
    digest = RangeDigest(work.offset)
    counts = _Counts()
    blocking = sink.blocking
    for chunk in chunk_plan(work.offset, work.length, work.extents, chunk_size, align=ZERO_BLOCK):
        position = chunk.offset
        for part in chunk.reads:
            await _zero(sink, digest, counts, position, part.offset - position)
            await source.read_into(part.offset, memoryview(buffer)[: part.length])
            counts.read += part.length
            read = _Read(part.offset, buffer, part.length)
            if blocking is not None:
                await asyncio.to_thread(_store_here, blocking, digest, counts, read, back)
            else:
                await _store_remote(sink, digest, counts, read)
            position = part.end
        await _zero(sink, digest, counts, position, chunk.end - position)
    return digest.digest(), RangeCounts(counts.read, counts.written, counts.zero)


async def _zero(sink: DiskSink, digest: RangeDigest, counts: _Counts, offset: int, length: int) -> None:
    """A part known to be zero (never read): zero it on the sink and check it reads so."""
    if length <= 0:
        return
    digest.add_zero(length)
    counts.zero += length
    blocking = sink.blocking
    if blocking is not None:
        zeroed = await asyncio.to_thread(_zero_here, blocking, offset, length)
    else:
        await sink.zero(offset, length)
        zeroed = await sink.reads_zero(offset, length)
    if not zeroed:
        raise _Differs(offset)


def _zero_here(sink: BlockingSink, offset: int, length: int) -> bool:
    sink.zero_sync(offset, length)
    return sink.reads_zero_sync(offset, length)


@dataclass(frozen=True)
class _Read:
    """The first ``length`` bytes of ``buffer``, read from the source at ``offset``."""

    offset: int
    buffer: bytearray
    length: int

    @property
    def data(self) -> memoryview:
        return memoryview(self.buffer)[: self.length]


def _store_here(sink: BlockingSink, digest: RangeDigest, counts: _Counts, read: _Read, back: bytearray) -> None:
    """Digest, write and check what was read, in this thread, reading it back into ``back``."""
    offset, data = read.offset, read.data
    runs = digest.add(read.buffer, read.length)
    for run in runs:
        if run.zero:
            sink.zero_sync(offset + run.offset, run.length)
            counts.zero += run.length
        else:
            sink.write_sync(offset + run.offset, data[run.offset : run.end])
            counts.written += run.length
    for run in runs:
        where = offset + run.offset
        if run.zero:
            if not sink.reads_zero_sync(where, run.length):
                raise _Differs(where)
            continue
        held = memoryview(back)[: run.length]
        sink.read_into_sync(where, held)
        if not _same(held, data[run.offset : run.end]):
            raise _Differs(where)


async def _store_remote(sink: DiskSink, digest: RangeDigest, counts: _Counts, read: _Read) -> None:
    """Digest what was read (in a thread), write its runs and check them with the sink's async calls."""
    offset, data = read.offset, read.data
    runs = await asyncio.to_thread(digest.add, read.buffer, read.length)
    for run in runs:
        if run.zero:
            await sink.zero(offset + run.offset, run.length)
            counts.zero += run.length
        else:
            await sink.write(offset + run.offset, data[run.offset : run.end])
            counts.written += run.length
    await _check_remote(sink, offset, data, runs)


async def _check_remote(sink: DiskSink, offset: int, data: memoryview, runs: list[Run]) -> None:
    """Read back what was written at ``offset``: data runs at most :data:`READ_BACK` bytes at a
    time, compared by digest; zero runs with :meth:`DiskSink.reads_zero`."""
    for run in runs:
        where = offset + run.offset
        if run.zero:
            if not await sink.reads_zero(where, run.length):
                raise _Differs(where)
            continue
        for start in range(run.offset, run.end, READ_BACK):
            length = min(READ_BACK, run.end - start)
            if not _same(await sink.read(offset + start, length), data[start : start + length]):
                raise _Differs(offset + start)


def _same(held: bytes | memoryview, written: memoryview) -> bool:
    """Whether the bytes read back equal those written (XXH3-128 of each: about 40 GB/s, where
    comparing a ``memoryview`` runs element by element)."""
    return len(held) == len(written) and xxhash.xxh3_128_digest(held) == xxhash.xxh3_128_digest(written)
