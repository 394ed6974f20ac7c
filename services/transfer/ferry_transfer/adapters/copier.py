"""Copies one disk from a ranged source to a :class:`~.sinks.DiskSink`, then verifies the target.

Ranges are read concurrently (at most ``in_flight`` in memory at once); data runs are
written, all-zero blocks and gaps between extents become zero (holes). Every segment of
the plan (:func:`ferry_transfer.domain.ranges.plan_segments`) gets a SHA-256; the disk's
checksum is a SHA-256 over the ordered ``(offset, length, digest)`` records, computed the
same way over the source while copying and over the target afterwards. Segments whose
target digest differs are copied again once (``repairs``) before :class:`ChecksumMismatch`
is raised.
"""

import asyncio
import hashlib
import logging
import struct
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from ferry_transfer.domain.ports import DiskSink
from ferry_transfer.domain.ranges import (
    DEFAULT_RANGE_SIZE,
    DEFAULT_ZERO_BLOCK,
    Extent,
    Run,
    Segment,
    ZeroBlocks,
    plan_segments,
)

ProgressCallback = Callable[[int, int], None]
_RECORD = struct.Struct(">QQ")
log = logging.getLogger(__name__)


class DiskSource(Protocol):
    async def read(self, offset: int, length: int) -> bytes:
        """Exactly the bytes ``[offset, offset + length)`` of the source disk."""


class ChecksumMismatch(Exception):  # noqa: N818 - the name the issue uses
    """The target differs from what was read from the source in the segments starting at ``offsets``."""

    def __init__(self, offsets: list[int]) -> None:
        shown = ", ".join(str(offset) for offset in offsets[:10]) + (", …" if len(offsets) > 10 else "")
        super().__init__(f"target differs from the source in {len(offsets)} range(s) at offsets {shown}")
        self.offsets = offsets


@dataclass(frozen=True, slots=True)
class CopyResult:
    bytes_read: int
    bytes_written: int
    zero_bytes_skipped: int
    """Bytes of the disk not written as data: zero blocks read from the source and gaps between extents."""
    sha256: str
    """Hex digest over the ordered per-segment digests (see the module docstring)."""


@lru_cache(maxsize=8)
def _zero_digest(length: int) -> bytes:
    digest = hashlib.sha256()
    block = bytes(min(length, DEFAULT_RANGE_SIZE))
    for start in range(0, length, len(block)):
        digest.update(block[: length - start])
    return digest.digest()


def combine_digests(segments: Iterable[Segment], digests: Iterable[bytes]) -> str:
    """The disk checksum: SHA-256 over ``offset, length`` (big-endian u64) and digest of each segment, in order."""
    total = hashlib.sha256()
    for segment, digest in zip(segments, digests, strict=True):
        total.update(_RECORD.pack(segment.offset, segment.length))
        total.update(digest)
    return total.hexdigest()


@dataclass
class _Totals:
    read: int = 0
    written: int = 0
    zero: int = 0
    done: int = 0


async def copy_disk(
    reader: DiskSource,
    sink: DiskSink,
    size: int,
    extents: Iterable[Extent] | None = None,
    *,
    range_size: int = DEFAULT_RANGE_SIZE,
    in_flight: int = 4,
    zero_block: int = DEFAULT_ZERO_BLOCK,
    on_progress: ProgressCallback | None = None,
    repairs: int = 1,
) -> CopyResult:
    """Copy ``size`` bytes (only ``extents`` if given; the rest is zero), finish the sink and verify it.

    Segments that fail verification are read and written again, up to ``repairs`` times;
    :class:`ChecksumMismatch` if they still differ. Progress counts each byte once; the
    result's byte counts include what a repair read and wrote again.
    """
    if in_flight < 1:
        raise ValueError(f"in_flight must be at least 1, got {in_flight}")
    if sink.size < size:
        raise ValueError(f"the target holds {sink.size} bytes, the source disk {size}")
    segments = plan_segments(size, extents, range_size)
    zeroes = ZeroBlocks(zero_block)
    digests: list[bytes] = [b""] * len(segments)
    totals = _Totals()
    repairing = False

    def progress(length: int) -> None:
        if repairing:
            return
        totals.done += length
        if on_progress is not None:
            on_progress(totals.done, size)

    async def copy_segment(index: int, segment: Segment) -> None:
        if not segment.data:
            await sink.zero(segment.offset, segment.length)
            digests[index] = _zero_digest(segment.length)
            totals.zero += segment.length
            progress(segment.length)
            return
        data = await reader.read(segment.offset, segment.length)
        totals.read += len(data)
        runs, digest = await asyncio.to_thread(_inspect, zeroes, data)
        digests[index] = digest
        view = memoryview(data)
        for run in runs:
            if run.zero:
                await sink.zero(segment.offset + run.offset, run.length)
                totals.zero += run.length
            else:
                await sink.write(segment.offset + run.offset, view[run.offset : run.offset + run.length])
                totals.written += run.length
        progress(segment.length)

    if on_progress is not None:
        on_progress(0, size)
    pending = list(enumerate(segments))
    await _run_bounded(copy_segment, pending, in_flight)
    for attempt in range(repairs + 1):
        await sink.finish()
        try:
            await verify(
                sink, [s for _, s in pending], [digests[i] for i, _ in pending], in_flight=in_flight, zeroes=zeroes
            )
        except ChecksumMismatch as mismatch:
            if attempt == repairs:
                raise
            wrong = set(mismatch.offsets)
            pending = [(i, s) for i, s in pending if s.offset in wrong]
            log.warning("%s; copying those ranges again", mismatch)
            repairing = True
            await _run_bounded(copy_segment, pending, in_flight)
        else:
            break
    return CopyResult(totals.read, totals.written, totals.zero, combine_digests(segments, digests))


async def verify(
    sink: DiskSink,
    segments: list[Segment],
    expected: list[bytes],
    *,
    in_flight: int = 4,
    zeroes: ZeroBlocks | None = None,
) -> None:
    """Re-read every segment from the target; :class:`ChecksumMismatch` names those whose digest differs."""
    blocks = zeroes or ZeroBlocks()
    actual: list[bytes] = [b""] * len(segments)

    async def check(index: int, segment: Segment) -> None:
        data = await sink.read(segment.offset, segment.length)
        actual[index] = (await asyncio.to_thread(_inspect, blocks, data))[1]

    await _run_bounded(check, list(enumerate(segments)), in_flight)
    wrong = [segment.offset for segment, a, e in zip(segments, actual, expected, strict=True) if a != e]
    if wrong:
        raise ChecksumMismatch(wrong)


def _inspect(zeroes: ZeroBlocks, data: bytes) -> tuple[list[Run], bytes]:
    """Zero runs and SHA-256 of a buffer (in a worker thread: both release the GIL on large buffers)."""
    runs = zeroes.runs(data)
    if len(runs) == 1 and runs[0].zero:
        return runs, _zero_digest(len(data))
    return runs, hashlib.sha256(data).digest()


async def _run_bounded(
    work: Callable[[int, Segment], Awaitable[None]], items: list[tuple[int, Segment]], limit: int
) -> None:
    """Run ``work(index, segment)`` for every item with ``limit`` workers; the first failure cancels the rest."""
    queue = iter(items)

    async def worker() -> None:
        for index, segment in queue:
            await work(index, segment)

    tasks = [asyncio.create_task(worker()) for _ in range(min(limit, len(items)))]
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
