"""Opens the sink a ``CopyDisk`` names: a sparse raw file, or an NBD export.

Opening failures become :class:`SinkUnavailable` with a code, a message saying what to do,
and whether a later attempt may succeed (an NBD server that is not listening yet) or not
(no such directory or export). The sink is always closed when the copy ends, however it
ends: an NBD connection is disconnected after a copy and hung up after a failure or a
cancellation.
"""

import asyncio
import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from ferry_shared.errors import FerryError
from ferry_shared.migrations import DiskSink as SinkSpec

from .nbd import NbdClient, NbdConnectionError, NbdHandshakeError
from .sinks import DiskSink, NbdSink, RawFileSink

_CUT_OFF = (OSError, TimeoutError, asyncio.IncompleteReadError)
"""Causes of a handshake failure that a later attempt may not meet."""


class SinkUnavailable(FerryError):  # noqa: N818 - reads as what happened
    """The sink could not be opened. ``retryable``: a later attempt may succeed."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(code, message)
        self.retryable = retryable


@dataclass(frozen=True)
class SinkOptions:
    nbd_in_flight: int = 16
    """NBD requests in flight on the connection."""
    connect_timeout: float = 30.0
    disconnect_timeout: float = 30.0


class SinkFactory:
    """Opens sinks from their specs (the handler's sink port)."""

    def __init__(self, options: SinkOptions | None = None) -> None:
        self._options = options or SinkOptions()

    @asynccontextmanager
    async def open(self, spec: SinkSpec) -> AsyncIterator[DiskSink]:
        if spec.kind == "file":
            with _open_file(spec) as file_sink:
                yield file_sink
            return
        client = await self._connect(spec)
        try:
            yield NbdSink(client)
        except BaseException:
            await client.close()  # hang up at once: the target is incomplete anyway
            raise
        await client.disconnect(drain_timeout=self._options.disconnect_timeout)

    async def _connect(self, spec: SinkSpec) -> NbdClient:
        where = spec.describe()
        try:
            return await NbdClient.open(
                host=spec.host,
                port=spec.port,
                export_name=spec.export,
                max_in_flight=self._options.nbd_in_flight,
                connect_timeout=self._options.connect_timeout,
            )
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


def _open_file(spec: SinkSpec) -> RawFileSink:
    path = Path(spec.path)
    if not path.is_absolute():
        raise SinkUnavailable("invalid_sink", f"the file sink path {spec.path!r} is not absolute", retryable=False)
    if not path.parent.is_dir():
        raise SinkUnavailable(
            "sink_missing",
            f"the directory {path.parent} does not exist on this transfer worker; file sinks need the target "
            "directory shared with every transfer worker",
            retryable=False,
        )
    try:
        return RawFileSink(path, spec.size_bytes)
    except OSError as error:
        hint = "give the transfer worker write access" if error.errno in (errno.EACCES, errno.EPERM) else "check it"
        raise SinkUnavailable(
            "sink_unwritable", f"cannot open {path} for writing ({error.strerror}); {hint}", retryable=False
        ) from error
