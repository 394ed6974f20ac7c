"""Chunk buffers reused from range to range, so that the copy's hot path allocates nothing.

A fresh buffer of a chunk's size is a new memory mapping each time (see :mod:`.memory`): the
kernel faults in and zeroes every page of it before a byte of data lands there, which costs
about as much as copying the chunk once more. :class:`ChunkBuffers` hands out buffers of one
size and takes them back for the next range; it keeps at most ``keep`` free ones, so a worker
holds about ``ranges in flight * buffers per range`` of them, never more.
"""

import contextlib
import threading
from collections.abc import Iterator


class ChunkBuffers:
    """Reusable ``bytearray`` buffers, by size; thread-safe."""

    def __init__(self, keep: int = 32) -> None:
        if keep < 0:
            raise ValueError(f"keep must not be negative, got {keep}")
        self._keep = keep
        self._free: dict[int, list[bytearray]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lease(self, size: int, count: int) -> Iterator[list[bytearray]]:
        """``count`` buffers of ``size`` bytes (content undefined) for the block; returned after it."""
        taken = [self._take(size) for _ in range(count)]
        try:
            yield taken
        finally:
            for buffer in taken:
                self._give(buffer)

    @property
    def free(self) -> int:
        """Buffers kept for reuse now."""
        with self._lock:
            return sum(len(free) for free in self._free.values())

    def _take(self, size: int) -> bytearray:
        with self._lock:
            free = self._free.get(size)
            if free:
                return free.pop()
        return bytearray(size)

    def _give(self, buffer: bytearray) -> None:
        with self._lock:
            if sum(len(free) for free in self._free.values()) < self._keep:
                self._free.setdefault(len(buffer), []).append(buffer)
