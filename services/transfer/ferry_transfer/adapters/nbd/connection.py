"""Pipelined NBD transmission on one stream: cookies out, replies matched back to futures.

Used only by :class:`.client.NbdClient`, which turns byte ranges into single requests.
Any number of tasks call :meth:`NbdConnection.request`; each takes one of
``max_in_flight`` slots, writes its header (and payload) in one go with a fresh 64-bit
cookie, and waits on a future. One reader task parses simple and structured replies,
completes the future with the same cookie and frees the slot. A reply with an error fails
that request only; a broken stream or a protocol violation fails every outstanding and
later request with :class:`.errors.NbdConnectionError`.
"""

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

from .errors import NbdConnectionError, NbdError
from .protocol import (
    OFFSET_PREFIX,
    SIMPLE_REPLY_MAGIC,
    SIMPLE_REPLY_REST,
    STRUCTURED_REPLY_MAGIC,
    STRUCTURED_REPLY_REST,
    Command,
    CommandFlag,
    Errno,
    ExportInfo,
    pack_request,
)
from .replies import StructuredChunk, assemble_read, parse_chunk, unexpected_reply

COOKIE_MASK = 0xFFFF_FFFF_FFFF_FFFF
SMALL_PAYLOAD = 64 * 1024
"""Payloads up to this size go out in the same write as their header."""


@dataclass
class Pending:
    """One request on the wire, as the reader needs to know it."""

    command: Command
    offset: int
    length: int
    future: asyncio.Future[bytes]
    chunks: list[StructuredChunk] = field(default_factory=list)
    error: NbdError | None = None


class NbdConnection:
    """The transmission phase of one negotiated NBD stream."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: ExportInfo,
        *,
        peer: str,
        max_in_flight: int,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self.info = info
        self.peer = peer
        self._reader = reader
        self._writer = writer
        self._slots = asyncio.Semaphore(max_in_flight)
        self._send_lock = asyncio.Lock()
        self._pending: dict[int, Pending] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._cookies = itertools.count(1)
        self._closing = False
        self._server_shutting_down = False
        self._broken: tuple[str, BaseException | None] | None = None
        self._reader_task = asyncio.create_task(self._read_replies(), name=f"nbd-replies {peer}")

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    @property
    def usable(self) -> bool:
        return self._broken is None and not self._closing and not self._server_shutting_down

    async def request(
        self,
        command: Command,
        *,
        offset: int = 0,
        length: int = 0,
        flags: CommandFlag = CommandFlag.NONE,
        payload: bytes | memoryview | None = None,
    ) -> bytes:
        """Send one request once a slot is free; return its data (reads) or ``b""``."""
        self._raise_if_unusable()
        await self._slots.acquire()
        try:
            async with self._send_lock:
                # Wait until the previous request has (mostly) left, so the transport buffers one
                # request rather than every request in flight (asyncio copies and shifts that buffer).
                await self._drain()
                self._raise_if_unusable()
                future = self._send(command, flags, offset, length, payload)
        except BaseException:
            self._slots.release()  # nothing was sent: the slot is still ours
            raise
        return await future  # cancelling the caller cancels the future; the reply still frees the slot

    async def disconnect(self, drain_timeout: float) -> None:
        """Refuse new requests, let outstanding ones finish, send NBD_CMD_DISC and close."""
        if self._broken is None and not self._closing:
            self._closing = True
            try:
                async with asyncio.timeout(drain_timeout), self._send_lock:
                    await self._idle.wait()
                    self._writer.write(pack_request(Command.DISC, CommandFlag.NONE, next(self._cookies), 0, 0))
                    await self._writer.drain()
            except (TimeoutError, ConnectionError, OSError) as e:  # NbdConnectionError if it broke meanwhile
                self._fail("disconnect did not complete", e)
        await self.close()

    async def close(self) -> None:
        """Hang up now; outstanding requests fail with NbdConnectionError."""
        self._closing = True
        self._writer.close()
        self._fail("the client closed the connection", None)
        with contextlib.suppress(ConnectionError, OSError):  # closed either way; the cause went to the requests
            await self._writer.wait_closed()
        self._reader_task.cancel()
        await asyncio.gather(self._reader_task, return_exceptions=True)

    def _send(
        self, command: Command, flags: CommandFlag, offset: int, length: int, payload: bytes | memoryview | None
    ) -> asyncio.Future[bytes]:
        """Write one request and register it; no await in between, so requests never interleave."""
        cookie = next(self._cookies) & COOKIE_MASK
        header = pack_request(command, flags, cookie, offset, length)
        if payload is not None and len(payload) <= SMALL_PAYLOAD:
            self._writer.write(header + bytes(payload))
        else:
            self._writer.write(header)
            if payload is not None:
                self._writer.write(payload)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[cookie] = Pending(command, offset, length, future)
        self._idle.clear()
        return future

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as e:
            self._fail("sending failed", e)
            raise self._connection_error() from e

    def _raise_if_unusable(self) -> None:
        if self._broken is not None:
            raise self._connection_error()
        if self._closing:
            raise NbdConnectionError(f"NBD connection to {self.peer} is closing")
        if self._server_shutting_down:
            raise NbdConnectionError(f"NBD server {self.peer} is shutting down (it answered ESHUTDOWN)")

    def _connection_error(self) -> NbdConnectionError:
        assert self._broken is not None
        reason, cause = self._broken
        error = NbdConnectionError(f"NBD connection to {self.peer} is unusable: {reason}")
        error.__cause__ = cause
        return error

    def _fail(self, reason: str, cause: BaseException | None) -> None:
        """Mark the connection broken (first reason wins) and fail everything outstanding."""
        if self._broken is None:
            self._broken = (f"{reason}: {cause}" if cause is not None else reason, cause)
            self._writer.close()
        for cookie in list(self._pending):
            pending = self._pending.pop(cookie)
            self._slots.release()
            if not pending.future.done():
                pending.future.set_exception(self._connection_error())
        self._idle.set()

    def _finish(self, cookie: int, data: bytes = b"", error: NbdError | None = None) -> None:
        pending = self._pending.pop(cookie)
        self._slots.release()
        if not self._pending:
            self._idle.set()
        if error is not None and error.errno == Errno.ESHUTDOWN:
            self._server_shutting_down = True  # the spec asks us to disconnect: refuse new requests
        if pending.future.done():
            return  # the caller was cancelled
        if error is not None:
            pending.future.set_exception(error)
        else:
            pending.future.set_result(data)

    def _lookup(self, cookie: int) -> Pending:
        pending = self._pending.get(cookie)
        if pending is None:
            raise unexpected_reply(self.peer, f"a reply for unknown cookie {cookie:#x}")
        return pending

    async def _read_replies(self) -> None:
        try:
            while True:
                magic = int.from_bytes(await self._reader.readexactly(4), "big")
                if magic == SIMPLE_REPLY_MAGIC:
                    await self._read_simple_reply()
                elif magic == STRUCTURED_REPLY_MAGIC and self.info.structured_replies:
                    await self._read_structured_chunk()
                else:
                    raise unexpected_reply(self.peer, f"reply magic {magic:#x}")
        except asyncio.IncompleteReadError as e:
            if not (self._closing and not self._pending):
                self._fail("the server closed the connection", e)
        except (ConnectionError, OSError) as e:  # includes NbdProtocolError
            self._fail("the connection broke", e)
        except Exception as e:
            self._fail("the reply reader crashed", e)
            raise

    async def _read_simple_reply(self) -> None:
        error, cookie = SIMPLE_REPLY_REST.unpack(await self._reader.readexactly(SIMPLE_REPLY_REST.size))
        pending = self._lookup(cookie)
        if error:
            self._finish(cookie, error=_request_error(pending, error, ""))
        elif pending.command == Command.READ:
            if self.info.structured_replies:
                raise unexpected_reply(self.peer, "a simple reply carrying read data after structured replies")
            self._finish(cookie, await self._reader.readexactly(pending.length))
        else:
            self._finish(cookie)

    async def _read_structured_chunk(self) -> None:
        flags, reply_type, cookie, length = STRUCTURED_REPLY_REST.unpack(
            await self._reader.readexactly(STRUCTURED_REPLY_REST.size)
        )
        pending = self._lookup(cookie)
        if length > pending.length + OFFSET_PREFIX.size + 8192:
            raise unexpected_reply(self.peer, f"a {length}-byte chunk for a {pending.length}-byte request")
        chunk = parse_chunk(pending.command, flags, reply_type, await self._reader.readexactly(length), self.peer)
        if chunk.error is not None:
            if pending.error is None:
                pending.error = _request_error(pending, *chunk.error)
        elif chunk.length:
            pending.chunks.append(chunk)
        if not chunk.done:
            return
        if pending.error is not None:
            self._finish(cookie, error=pending.error)
        elif pending.command == Command.READ:
            self._finish(cookie, assemble_read(pending.offset, pending.length, pending.chunks, self.peer))
        else:
            self._finish(cookie)


def _request_error(pending: Pending, code: int, message: str) -> NbdError:
    where = f"{pending.command.name} of {pending.length} bytes at offset {pending.offset}"
    return NbdError(code, f"{where} failed" + (f": {message}" if message else ""))
