"""Prepares and opens the sink a copy names: a sparse raw file, or an NBD export.

* :meth:`SinkFactory.prepare` (the coordinator, once per disk): checks that the sink is
  large enough, creates or sizes the file, and makes the parts of the disk that no range
  covers read as zeroes — holes in a file, WRITE_ZEROES on NBD (a fresh volume is not
  guaranteed to be zero). It touches nothing else, so running it again, even while ranges
  are being copied, loses no copied byte.
* :meth:`SinkFactory.open` (a range worker): a file is opened for each range (never
  created or truncated there); an NBD connection is kept per export and shared by the
  ranges in flight, closed once no range used it for ``idle_seconds`` (so a sink server can
  stop when its disk is done), and one that broke is hung up and replaced on the next open.

Every sink it opens makes itself durable through :class:`~.group_sync.GroupSync`: a range's
:meth:`~ferry_transfer.domain.ports.DiskSink.finish` joins one flush (fdatasync of the file,
NBD FLUSH) with the other ranges of the same sink that end meanwhile.

An NBD location with a ``tls_server_name`` is reached over TLS with the worker's client
context (``SinkOptions.tls``: Ferry's NBD CA and the worker's client certificate), verifying
the sink's certificate for that name; a worker without one refuses such a sink.

Opening failures become :class:`~ferry_transfer.domain.errors.SinkUnavailable` with a code,
a message saying what to do, and whether a later attempt may succeed (an NBD server that is
not listening yet) or not (no such directory or export).
"""

import asyncio
import contextlib
import errno
import functools
import os
import ssl
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry_shared.migrations import SinkLocation
from ferry_transfer.domain.errors import SinkUnavailable
from ferry_transfer.domain.ports import DiskSink
from ferry_transfer.domain.ranges import Extent

from .group_sync import GroupSync
from .grouped_sink import GroupedSink, sync_file
from .nbd import NbdClient, NbdConnectionError, NbdHandshakeError, NbdTls, NbdTlsError
from .sinks import NbdSink, RawFileSink

_CUT_OFF = (OSError, TimeoutError, asyncio.IncompleteReadError)
"""Causes of a handshake failure that a later attempt may not meet."""
NbdKey = tuple[str, int, str, str]
"""host, port, export and the TLS name: a connection is shared only by ranges of one sink."""


@dataclass(frozen=True)
class SinkOptions:
    nbd_in_flight: int = 16
    """NBD requests in flight on one connection."""
    connect_timeout: float = 30.0
    disconnect_timeout: float = 30.0
    idle_seconds: float = 2.0
    """An NBD connection no range used for this long is closed."""
    tls: ssl.SSLContext | None = None
    """The client context for sinks that require TLS (from ``FERRY_TRANSFER_NBD_TLS_DIR``)."""
    sync_batch: int = 8
    """Ranges of one sink made durable by one flush, at most."""
    sync_wait: float = 0.5
    """Seconds a range that ended waits, at most, for others of its sink to share its flush."""


@dataclass
class _Connection:
    client: NbdClient
    users: int = 0
    expiry: asyncio.TimerHandle | None = None


class SinkFactory:
    """Prepares and opens sinks from their locations (the handlers' sink port)."""

    def __init__(self, options: SinkOptions | None = None) -> None:
        self._options = options or SinkOptions()
        self._nbd: dict[NbdKey, _Connection] = {}
        self._connecting: dict[NbdKey, asyncio.Lock] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self._groups = GroupSync(batch=self._options.sync_batch, wait=self._options.sync_wait)

    async def prepare(self, location: SinkLocation, capacity: int, zero: Sequence[Extent]) -> None:
        """Check the sink holds ``capacity`` bytes and make the ``zero`` parts read as zeroes (idempotent)."""
        if location.kind == "file":
            _check_size(location, location.size_bytes, capacity)
            await asyncio.to_thread(_prepare_file, location, zero)
            return
        async with self.open(location) as sink:
            _check_size(location, sink.size, capacity)
            for part in zero:
                await sink.zero(part.offset, part.length)
            await sink.finish()

    @contextlib.asynccontextmanager
    async def open(self, location: SinkLocation) -> AsyncIterator[DiskSink]:
        """The sink for writing ranges; an NBD connection broken meanwhile is hung up, not reused."""
        if location.kind == "file":
            path = _file_path(location)
            with _open_file(path, location.size_bytes) as file_sink, self._groups.using(path):
                yield GroupedSink(file_sink, self._groups, path, functools.partial(sync_file, path))
            return
        key = (location.host, location.port, location.export, location.tls_server_name)
        connection = await self._acquire(key, location)
        try:
            nbd_sink = NbdSink(connection.client)
            with self._groups.using(key):
                yield GroupedSink(nbd_sink, self._groups, key, nbd_sink.finish)
        except NbdConnectionError:
            self._drop(key, connection)
            raise
        finally:
            connection.users -= 1
            if not connection.users:
                loop = asyncio.get_running_loop()
                connection.expiry = loop.call_later(self._options.idle_seconds, self._expire, key, connection)

    async def close_all(self) -> None:
        """Finish the flushes under way, then disconnect every NBD connection (at shutdown)."""
        await self._groups.drain()
        connections, self._nbd = list(self._nbd.values()), {}
        for connection in connections:
            if connection.expiry is not None:
                connection.expiry.cancel()
            self._later(connection.client.disconnect(drain_timeout=self._options.disconnect_timeout))
        if self._closing:
            await asyncio.wait(self._closing)

    async def _acquire(self, key: NbdKey, location: SinkLocation) -> _Connection:
        async with self._connecting.setdefault(key, asyncio.Lock()):
            connection = self._nbd.get(key)
            if connection is not None and not connection.client.usable:
                self._drop(key, connection)
                connection = None
            if connection is None:
                connection = _Connection(await self._connect(location))
                self._nbd[key] = connection
            if connection.expiry is not None:
                connection.expiry.cancel()
                connection.expiry = None
            connection.users += 1
            return connection

    def _drop(self, key: NbdKey, connection: _Connection) -> None:
        if connection.expiry is not None:
            connection.expiry.cancel()
        if self._nbd.get(key) is connection:
            del self._nbd[key]
        self._later(connection.client.close())

    def _expire(self, key: NbdKey, connection: _Connection) -> None:
        if connection.users or self._nbd.get(key) is not connection:
            return
        del self._nbd[key]
        self._later(connection.client.disconnect(drain_timeout=self._options.disconnect_timeout))

    def _later(self, closing: Coroutine[Any, Any, None]) -> None:
        """Close in the background; :meth:`close_all` waits for it."""
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _tls(self, location: SinkLocation) -> NbdTls | None:
        if not location.tls_server_name:
            return None
        if self._options.tls is None:
            raise SinkUnavailable(
                "sink_tls_unconfigured",
                f"the sink {location.describe()} requires TLS but FERRY_TRANSFER_NBD_TLS_DIR is not set on this "
                "transfer worker; give it the NBD CA and a client certificate (ca-cert.pem, client-cert.pem, "
                "client-key.pem)",
                retryable=False,
            )
        return NbdTls(self._options.tls, location.tls_server_name)

    async def _connect(self, location: SinkLocation) -> NbdClient:
        where = location.describe()
        tls = self._tls(location)
        try:
            return await NbdClient.open(
                host=location.host,
                port=location.port,
                export_name=location.export,
                max_in_flight=self._options.nbd_in_flight,
                connect_timeout=self._options.connect_timeout,
                tls=tls,
            )
        except NbdTlsError as error:
            raise SinkUnavailable(
                "sink_tls_failed",
                f"TLS with the NBD sink at {where} failed: {error}; check that the worker's client certificate and "
                "the writer's sink certificates come from the same NBD CA",
                retryable=False,
            ) from error
        except NbdHandshakeError as error:
            if isinstance(error.__cause__, _CUT_OFF):
                raise SinkUnavailable(
                    "sink_unreachable",
                    f"the NBD server at {where} hung up during the handshake ({error}); retry later",
                    retryable=True,
                ) from error
            raise SinkUnavailable(
                "sink_refused",
                f"the NBD server at {where} refused the export: {error}; check the sink's export name",
                retryable=False,
            ) from error
        except NbdConnectionError as error:
            raise SinkUnavailable(
                "sink_unreachable",
                f"cannot connect to the NBD sink at {where} ({error.__cause__ or error}); "
                "the sink may still be starting, retry later",
                retryable=True,
            ) from error


def _check_size(location: SinkLocation, size: int, capacity: int) -> None:
    if size < capacity:
        raise SinkUnavailable(
            "sink_too_small",
            f"the sink {location.describe()} holds {size} bytes but the disk has {capacity}; "
            "the target volume must be at least as large",
            retryable=False,
        )


def _file_path(location: SinkLocation) -> Path:
    path = Path(location.path)
    if not path.is_absolute():
        raise SinkUnavailable("invalid_sink", f"the file sink path {location.path!r} is not absolute", retryable=False)
    if not path.parent.is_dir():
        raise SinkUnavailable(
            "sink_missing",
            f"the directory {path.parent} does not exist on this transfer worker; file sinks need the target "
            "directory shared with every transfer worker",
            retryable=False,
        )
    return path


def _unwritable(path: Path, error: OSError) -> SinkUnavailable:
    hint = "give the transfer worker write access" if error.errno in (errno.EACCES, errno.EPERM) else "check it"
    return SinkUnavailable(
        "sink_unwritable", f"cannot open {path} for writing ({error.strerror}); {hint}", retryable=False
    )


def _prepare_file(location: SinkLocation, zero: Sequence[Extent]) -> None:
    """Create the file (a hole) or size it, and punch the parts no range covers."""
    path = _file_path(location)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise _unwritable(path, error) from error
    try:
        if os.fstat(fd).st_size != location.size_bytes:
            os.ftruncate(fd, location.size_bytes)
    finally:
        os.close(fd)
    with RawFileSink(path, location.size_bytes, fresh=False) as sink:
        for part in zero:
            sink.zero_sync(part.offset, part.length)
        sink.sync()


def _open_file(path: Path, size: int) -> RawFileSink:
    try:
        return RawFileSink(path, size, fresh=False)
    except FileNotFoundError as error:
        raise SinkUnavailable(
            "sink_missing",
            f"the target file {path} is gone (it was prepared when the copy started); copy the disk again",
            retryable=False,
        ) from error
    except OSError as error:
        raise _unwritable(path, error) from error
