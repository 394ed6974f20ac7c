"""Where copied disks go: a :class:`DiskSink` port with a raw-file and an NBD implementation.

The copier (:mod:`.copier`) writes data runs with :meth:`DiskSink.write`, declares zero runs
with :meth:`DiskSink.zero`, calls :meth:`DiskSink.finish` and then reads the target back
with :meth:`DiskSink.read` to verify it; ranges that differ are written again and
finished once more.
"""

import asyncio
import os
from pathlib import Path
from typing import Protocol

from .nbd import NbdClient

Buffer = bytes | bytearray | memoryview
_ZERO_CHUNK = 1024 * 1024


class DiskSink(Protocol):
    """A target disk of a fixed ``size``."""

    @property
    def size(self) -> int: ...

    async def write(self, offset: int, data: Buffer) -> None:
        """Store ``data`` at ``offset``."""

    async def zero(self, offset: int, length: int) -> None:
        """Make ``[offset, offset + length)`` read as zeroes, preferably without allocating."""

    async def finish(self) -> None:
        """Make every write so far durable (again after a repair)."""

    async def read(self, offset: int, length: int) -> bytes:
        """Read back what the target holds (for verification)."""


class RawFileSink:
    """A sparse raw image file of exactly ``size`` bytes, created (or truncated to empty) on open.

    Because the file starts as one hole, :meth:`zero` has nothing to do before the first
    :meth:`finish`: zero runs stay holes. After it (a repair rewrites ranges), :meth:`zero`
    writes zeroes. Writes run in a worker thread so that reads from the source go on meanwhile.
    """

    def __init__(self, path: Path, size: int) -> None:
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        self.path = path
        self._size = size
        self._fresh = True
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            os.close(self._fd)
            raise

    @property
    def size(self) -> int:
        return self._size

    async def write(self, offset: int, data: Buffer) -> None:
        self._check(offset, len(data))
        await asyncio.to_thread(self._pwrite_all, offset, memoryview(data).cast("B"))

    async def zero(self, offset: int, length: int) -> None:
        self._check(offset, length)
        if not self._fresh:  # a fresh file: the range is a hole already
            await asyncio.to_thread(self._write_zeroes, offset, length)

    async def finish(self) -> None:
        self._fresh = False
        await asyncio.to_thread(os.fsync, self._fd)

    async def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return await asyncio.to_thread(os.pread, self._fd, length, offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "RawFileSink":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_zeroes(self, offset: int, length: int) -> None:
        block = memoryview(bytes(min(length, _ZERO_CHUNK)))
        for start in range(offset, offset + length, len(block)):
            self._pwrite_all(start, block[: offset + length - start])

    def _pwrite_all(self, offset: int, view: memoryview) -> None:
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self._size:
            raise ValueError(f"range [{offset}, {offset + length}) is outside {self.path} of {self._size} bytes")


class NbdSink:
    """An NBD export reached through a connected :class:`NbdClient` (the caller opens and closes it)."""

    def __init__(self, client: NbdClient) -> None:
        self._client = client

    @property
    def size(self) -> int:
        return self._client.size

    async def write(self, offset: int, data: Buffer) -> None:
        await self._client.pwrite(offset, data)

    async def zero(self, offset: int, length: int) -> None:
        await self._client.write_zeroes(offset, length)

    async def finish(self) -> None:
        if self._client.can_flush:
            await self._client.flush()

    async def read(self, offset: int, length: int) -> bytes:
        return await self._client.pread(offset, length)
