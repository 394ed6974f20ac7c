"""Where copied disks go: the raw-file and the NBD implementation of the
:class:`~ferry_transfer.domain.ports.DiskSink` port.

Range workers (:mod:`.range_copy`) write data runs with :meth:`DiskSink.write`, make zero
runs read as zeroes with :meth:`DiskSink.zero` (a hole in a file, NBD WRITE_ZEROES), read
what they wrote back with :meth:`DiskSink.read` / :meth:`DiskSink.reads_zero` to check it,
and make it durable with :meth:`DiskSink.finish` before the range counts as done. A raw
file also offers the same calls blocking (:attr:`DiskSink.blocking`), so that a worker
writes and checks a chunk in one thread.
"""

import asyncio
import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

from ferry_transfer.domain.ports import BlockingSink, Buffer

from .nbd import NbdClient

_ZERO_CHUNK = 1024 * 1024
_CHECK_CHUNK = 4 * 1024 * 1024
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_NO_PUNCH = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


def _load_fallocate() -> "ctypes._NamedFuncPointer | None":
    name = ctypes.util.find_library("c")
    function = getattr(ctypes.CDLL(name, use_errno=True), "fallocate", None) if name else None
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        function.restype = ctypes.c_int
    return function


_fallocate = _load_fallocate()


def all_zero(data: bytes) -> bool:
    """Whether every byte is zero (a ``memcmp``-speed check)."""
    return not data or (data[0] == 0 and data == bytes(len(data)))


class RawFileSink:
    """A sparse raw image file of ``size`` bytes.

    ``fresh`` (the default) creates it, or truncates an old one, to one hole of ``size``
    bytes; otherwise it opens a file that must exist (a range worker's view of a prepared
    target) and changes neither its size nor the other ranges. :meth:`zero` punches a hole
    (it writes zeroes where the file system cannot). File I/O runs in worker threads so that
    reads from the source go on meanwhile.
    """

    def __init__(self, path: Path, size: int, *, fresh: bool = True) -> None:
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        self.path = path
        self._size = size
        self._punch = _fallocate is not None
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_TRUNC if fresh else 0)
        self._fd = os.open(path, flags, 0o644)
        if not fresh:
            return
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            os.close(self._fd)
            raise

    @property
    def size(self) -> int:
        return self._size

    @property
    def blocking(self) -> BlockingSink:
        return self

    async def write(self, offset: int, data: Buffer) -> None:
        await asyncio.to_thread(self.write_sync, offset, data)

    def write_sync(self, offset: int, data: Buffer) -> None:
        """:meth:`write`, blocking."""
        view = memoryview(data).cast("B")
        self._check(offset, view.nbytes)
        self._pwrite_all(offset, view)

    async def zero(self, offset: int, length: int) -> None:
        self._check(offset, length)
        if length:
            await asyncio.to_thread(self.zero_sync, offset, length)

    async def finish(self) -> None:
        await asyncio.to_thread(os.fdatasync, self._fd)

    async def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return await asyncio.to_thread(self._pread_all, offset, length)

    async def reads_zero(self, offset: int, length: int) -> bool:
        return await asyncio.to_thread(self.reads_zero_sync, offset, length)

    def read_into_sync(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` from ``offset`` on (beyond the end of the file reads as zeroes), blocking."""
        view = buffer.cast("B")
        self._check(offset, view.nbytes)
        while view:
            got = os.preadv(self._fd, [view], offset)
            if not got:
                view[:] = bytes(view.nbytes)
                return
            view, offset = view[got:], offset + got

    def reads_zero_sync(self, offset: int, length: int) -> bool:
        """:meth:`reads_zero`, blocking."""
        self._check(offset, length)
        return self._reads_zero(offset, length)

    def zero_sync(self, offset: int, length: int) -> None:
        """:meth:`zero`, blocking (for callers in a worker thread already)."""
        self._check(offset, length)
        if not (self._punch and self._punch_hole(offset, length)):
            self._write_zeroes(offset, length)

    def sync(self) -> None:
        """:meth:`finish`, blocking."""
        os.fdatasync(self._fd)

    def _punch_hole(self, offset: int, length: int) -> bool:
        """Deallocate the range (it then reads as zeroes); False where the file system cannot."""
        assert _fallocate is not None
        if _fallocate(self._fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
            return True
        code = ctypes.get_errno()
        if code in _NO_PUNCH:
            self._punch = False
            return False
        raise OSError(code, f"punching a hole in {self.path} failed: {os.strerror(code)}")

    def _reads_zero(self, offset: int, length: int) -> bool:
        """Skip holes with SEEK_DATA; read and compare only what is allocated."""
        position, end = offset, offset + length
        while position < end:
            try:
                data_at = os.lseek(self._fd, position, os.SEEK_DATA)
            except OSError as error:
                if error.errno == errno.ENXIO:  # nothing but holes up to the end of the file
                    return True
                raise
            if data_at >= end:
                return True
            hole_at = min(end, os.lseek(self._fd, data_at, os.SEEK_HOLE))
            for start in range(data_at, hole_at, _CHECK_CHUNK):
                if not all_zero(self._pread_all(start, min(_CHECK_CHUNK, hole_at - start))):
                    return False
            position = hole_at
        return True

    def _pread_all(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) == length:
            return data
        parts = [data]
        got = len(data)
        while got < length:
            more = os.pread(self._fd, length - got, offset + got)
            if not more:  # beyond the end of the file: reads as zeroes
                parts.append(bytes(length - got))
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

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

    @property
    def blocking(self) -> None:
        return None

    async def write(self, offset: int, data: Buffer) -> None:
        await self._client.pwrite(offset, data)

    async def zero(self, offset: int, length: int) -> None:
        await self._client.write_zeroes(offset, length)

    async def finish(self) -> None:
        if self._client.can_flush:
            await self._client.flush()

    async def read(self, offset: int, length: int) -> bytes:
        return await self._client.pread(offset, length)

    async def reads_zero(self, offset: int, length: int) -> bool:
        for start in range(offset, offset + length, _CHECK_CHUNK):
            if not all_zero(await self._client.pread(start, min(_CHECK_CHUNK, offset + length - start))):
                return False
        return True
