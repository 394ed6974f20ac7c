"""An asyncio NBD client: byte ranges in, pipelined NBD requests out.

The transfer service's disk writers use it to fill a target volume (qemu-nbd, nbdkit or
any NBD server) over TCP or a Unix socket::

    async with NbdClient.connect(host="10.0.0.5", port=10809, export_name="disk0") as nbd:
        await nbd.pwrite(0, data)

Ranges longer than the server's maximum block size are split into several requests that
share the connection's ``max_in_flight`` slots, so many calls may run concurrently on one
client and memory stays bounded. Capabilities learnt in negotiation are checked before
sending (writes to a read-only export, FUA/flush/trim the server did not offer, ranges not
aligned to its minimum block size fail locally with :class:`NbdError`); ranges beyond the
end of the export are for the server to refuse. With ``tls`` (an :class:`.tls.NbdTls`) the
client asks for ``NBD_OPT_STARTTLS`` first, presents its certificate and verifies the server's
for the given name; it never falls back to plain text.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from .connection import NbdConnection
from .errors import NbdConnectionError, NbdError, NbdHandshakeError
from .negotiation import negotiate
from .protocol import (
    DEFAULT_MAX_PAYLOAD,
    BlockSizes,
    Command,
    CommandFlag,
    Errno,
    TransmissionFlag,
)
from .tls import NbdTls

ZERO_FILL_CHUNK = 1024 * 1024
"""Buffer size when write_zeroes has to send real zeroes."""
MAX_EFFECT_LENGTH = 2**31
"""Longest trim or write-zeroes request: no payload, and clear of servers that keep lengths signed."""


class NbdClient:
    """One negotiated connection to one export. Safe to use from many tasks at once."""

    def __init__(self, connection: NbdConnection, *, max_request: int) -> None:
        self._connection = connection
        info = connection.info
        minimum = info.block_sizes.minimum
        self._payload_limit = max(minimum, min(info.block_sizes.maximum, max_request) // minimum * minimum)
        self._effect_limit = MAX_EFFECT_LENGTH // minimum * minimum

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        *,
        host: str | None = None,
        port: int = 10809,
        unix_path: str | Path | None = None,
        export_name: str = "",
        max_in_flight: int = 16,
        max_request: int = DEFAULT_MAX_PAYLOAD,
        structured_replies: bool = True,
        connect_timeout: float = 30.0,
        tls: NbdTls | None = None,
        disconnect_timeout: float = 30.0,
    ) -> AsyncIterator["NbdClient"]:
        """Open, negotiate and yield a client; disconnect cleanly (or hang up) on exit."""
        client = await cls.open(
            host=host,
            port=port,
            unix_path=unix_path,
            export_name=export_name,
            max_in_flight=max_in_flight,
            max_request=max_request,
            structured_replies=structured_replies,
            connect_timeout=connect_timeout,
            tls=tls,
        )
        try:
            yield client
        finally:
            await client.disconnect(drain_timeout=disconnect_timeout)

    @classmethod
    async def open(
        cls,
        *,
        host: str | None = None,
        port: int = 10809,
        unix_path: str | Path | None = None,
        export_name: str = "",
        max_in_flight: int = 16,
        max_request: int = DEFAULT_MAX_PAYLOAD,
        structured_replies: bool = True,
        connect_timeout: float = 30.0,
        tls: NbdTls | None = None,
    ) -> "NbdClient":
        """Connect to ``host``:``port`` or ``unix_path`` and negotiate ``export_name`` (over TLS
        with ``tls``); caller closes."""
        if (host is None) == (unix_path is None):
            raise ValueError("give exactly one of host (with port) or unix_path")
        scheme = "nbds" if tls is not None else "nbd"
        if unix_path is not None:
            peer = f"{scheme}+unix:///{export_name}?socket={unix_path}"
        else:
            peer = f"{scheme}://{host}:{port}/{export_name}"
        limit = 4 * 1024 * 1024  # stream buffer: fewer wake-ups for large replies
        try:
            async with asyncio.timeout(connect_timeout):
                if unix_path is not None:
                    reader, writer = await asyncio.open_unix_connection(str(unix_path), limit=limit)
                else:
                    reader, writer = await asyncio.open_connection(host, port, limit=limit)
        except (OSError, TimeoutError) as e:
            raise NbdConnectionError(f"cannot connect to {peer}: {e!r}") from e
        try:
            async with asyncio.timeout(connect_timeout):
                info = await negotiate(
                    reader,
                    writer,
                    export_name=export_name,
                    structured_replies=structured_replies,
                    peer=peer,
                    tls=tls,
                )
        except NbdConnectionError:
            writer.close()
            raise
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
            writer.close()
            raise NbdHandshakeError(f"NBD handshake with {peer} failed: {e!r}") from e
        except BaseException:
            writer.close()
            raise
        connection = NbdConnection(reader, writer, info, peer=peer, max_in_flight=max_in_flight)
        return cls(connection, max_request=max_request)

    @property
    def size(self) -> int:
        """Export size in bytes."""
        return self._connection.info.size

    @property
    def flags(self) -> TransmissionFlag:
        return self._connection.info.flags

    @property
    def read_only(self) -> bool:
        return TransmissionFlag.READ_ONLY in self.flags

    @property
    def can_flush(self) -> bool:
        return TransmissionFlag.SEND_FLUSH in self.flags

    @property
    def can_fua(self) -> bool:
        return TransmissionFlag.SEND_FUA in self.flags

    @property
    def can_trim(self) -> bool:
        return TransmissionFlag.SEND_TRIM in self.flags

    @property
    def can_write_zeroes(self) -> bool:
        return TransmissionFlag.SEND_WRITE_ZEROES in self.flags

    @property
    def can_multi_conn(self) -> bool:
        """Whether the server allows several connections to this export to share its cache."""
        return TransmissionFlag.CAN_MULTI_CONN in self.flags

    @property
    def block_sizes(self) -> BlockSizes:
        return self._connection.info.block_sizes

    @property
    def structured_replies(self) -> bool:
        return self._connection.info.structured_replies

    @property
    def max_payload(self) -> int:
        """Longest single read or write request this client sends."""
        return self._payload_limit

    @property
    def in_flight(self) -> int:
        return self._connection.in_flight

    @property
    def usable(self) -> bool:
        """False once the connection broke, is closing, or the server is shutting down."""
        return self._connection.usable

    async def pread(self, offset: int, length: int) -> bytes:
        parts = await _all(
            self._connection.request(Command.READ, offset=start, length=size)
            for start, size in self._ranges(offset, length, self._payload_limit)
        )
        return parts[0] if len(parts) == 1 else b"".join(parts)  # one part: no copy

    async def pwrite(self, offset: int, data: bytes | bytearray | memoryview, fua: bool = False) -> None:
        self._require(not self.read_only, Errno.EPERM, "the export is read-only")
        flags = self._fua(fua)
        view = memoryview(data).cast("B")
        await _all(
            self._write(start, view[start - offset : start - offset + size], flags)
            for start, size in self._ranges(offset, len(view), self._payload_limit)
        )

    async def write_zeroes(self, offset: int, length: int, no_hole: bool = False, fua: bool = False) -> None:
        """Make the range read as zeroes: NBD_CMD_WRITE_ZEROES, or zero buffers if the server lacks it.

        Without ``no_hole`` the server may punch a hole (deallocate); with it, it must allocate.
        """
        self._require(not self.read_only, Errno.EPERM, "the export is read-only")
        if not self.can_write_zeroes:
            await self._write_zero_buffers(offset, length, fua)
            return
        flags = self._fua(fua) | (CommandFlag.NO_HOLE if no_hole else CommandFlag.NONE)
        await _all(
            self._connection.request(Command.WRITE_ZEROES, offset=start, length=size, flags=flags)
            for start, size in self._ranges(offset, length, self._effect_limit)
        )

    async def trim(self, offset: int, length: int, fua: bool = False) -> None:
        """Tell the server the range is unused (it may deallocate it; contents become undefined)."""
        self._require(not self.read_only, Errno.EPERM, "the export is read-only")
        self._require(self.can_trim, Errno.ENOTSUP, "the server does not offer NBD_CMD_TRIM")
        flags = self._fua(fua)
        await _all(
            self._connection.request(Command.TRIM, offset=start, length=size, flags=flags)
            for start, size in self._ranges(offset, length, self._effect_limit)
        )

    async def flush(self) -> None:
        """Persist every write the server has already answered."""
        self._require(self.can_flush, Errno.ENOTSUP, "the server does not offer NBD_CMD_FLUSH")
        await self._connection.request(Command.FLUSH)

    async def disconnect(self, drain_timeout: float = 30.0) -> None:
        """Wait (up to ``drain_timeout``) for outstanding requests, send NBD_CMD_DISC and close."""
        await self._connection.disconnect(drain_timeout)

    async def close(self) -> None:
        """Hang up at once; outstanding requests fail with NbdConnectionError."""
        await self._connection.close()

    async def _write_zero_buffers(self, offset: int, length: int, fua: bool) -> None:
        chunk = min(self._payload_limit, max(ZERO_FILL_CHUNK, self.block_sizes.preferred))
        zeroes = memoryview(bytes(chunk))
        flags = self._fua(fua)
        await _all(self._write(start, zeroes[:size], flags) for start, size in self._ranges(offset, length, chunk))

    def _write(self, offset: int, payload: memoryview, flags: CommandFlag) -> Awaitable[bytes]:
        return self._connection.request(Command.WRITE, offset=offset, length=len(payload), flags=flags, payload=payload)

    def _fua(self, fua: bool) -> CommandFlag:
        if not fua:
            return CommandFlag.NONE
        self._require(self.can_fua, Errno.ENOTSUP, "the server does not offer FUA")
        return CommandFlag.FUA

    def _ranges(self, offset: int, length: int, limit: int) -> list[tuple[int, int]]:
        """Split [offset, offset + length) into aligned requests of at most ``limit`` bytes."""
        if offset < 0 or length < 0:
            raise ValueError(f"negative offset or length ({offset}, {length})")
        minimum = self.block_sizes.minimum
        self._require(
            offset % minimum == 0 and length % minimum == 0,
            Errno.EINVAL,
            f"range ({offset}, {length}) is not aligned to the server's minimum block size {minimum}",
        )
        return [(start, min(limit, offset + length - start)) for start in range(offset, offset + length, limit)]

    @staticmethod
    def _require(condition: bool, errno: Errno, message: str) -> None:
        if not condition:
            raise NbdError(errno, message)


async def _all(requests: Iterable[Awaitable[bytes]]) -> list[bytes]:
    """Run requests concurrently (the connection bounds how many are on the wire); raise the first error."""
    pending = list(requests)
    if len(pending) == 1:
        return [await pending[0]]  # the common case: no task needed
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, bytes)]
