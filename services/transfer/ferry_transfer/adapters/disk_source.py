"""The source side of a copy: a disk's flat extent on a vSphere datastore, read with the provider's session.

:class:`DatastoreSources` opens a :class:`SessionReader` for one disk. Its reads go through
:class:`~.datastore.DatastoreReader` with the cached session's cookie, on the connection
pool (:class:`~.ranged_http.RangeClient`) of the provider's host, which all that provider's
disks share and which keeps its connections alive until :meth:`DatastoreSources.close`. A
401/403 answer makes it log in again (once per read) and repeat the read; a failure worth
retrying is retried a few times with back-off before it is raised, so one dropped
connection does not restart the whole disk.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from ferry_shared.migrations import SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_shared.retry import Backoff, pause
from ferry_shared.vsphere.endpoint import parse_endpoint
from ferry_shared.vsphere.trust import client_context
from ferry_transfer.domain.errors import SourceReadError

from .datastore import DatastoreReader, flat_file_url
from .ranged_http import RangeClient
from .source_sessions import SourceLogin, SourceSessions

log = logging.getLogger(__name__)

SESSION_REFUSED = frozenset({401, 403})
_T = TypeVar("_T")


@dataclass(frozen=True)
class ReadRetries:
    """How often one range read is retried after a failure worth retrying, and the first pause."""

    attempts: int = 3
    first_delay: float = 0.5


class SessionReader:
    """Ranged reads of one disk that survive an expired session and brief failures."""

    def __init__(
        self, reader: DatastoreReader, sessions: SourceSessions, login: SourceLogin, retries: ReadRetries
    ) -> None:
        self._reader = reader
        self._sessions = sessions
        self._login = login
        self._retries = retries
        self._renewing = asyncio.Lock()

    async def read(self, offset: int, length: int) -> bytes:
        return await self._retrying(lambda: self._reader.read(offset, length))

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        await self._retrying(lambda: self._reader.read_into(offset, buffer))

    async def _retrying(self, read: Callable[[], Awaitable[_T]]) -> _T:
        renewed = False
        backoff = Backoff(self._retries.first_delay)
        while True:
            login = self._login
            try:
                return await read()
            except SourceReadError as error:
                if error.status in SESSION_REFUSED and not renewed:
                    renewed = True
                    await self._renew(login)
                    continue
                if error.status in SESSION_REFUSED:
                    raise SourceReadError(
                        f"{error.message}; a fresh login was refused too, so the user '{login.spec.username}' "
                        "needs the Datastore.Browse privilege on the disk's datastore",
                        url=error.url,
                        status=error.status,
                        code=error.code,
                    ) from error
                if not error.retryable or backoff.failures >= self._retries.attempts:
                    raise
                delay = backoff.next()
                log.warning(
                    "%s; retry %d of %d in %.1fs", error.message, backoff.failures, self._retries.attempts, delay
                )
                await pause(delay)

    async def _renew(self, stale: SourceLogin) -> None:
        async with self._renewing:  # reads in flight fail together; the first renews for all
            if self._login is stale:
                self._login = await self._sessions.renew(stale)
                self._reader.set_session_cookie(self._login.cookie)


class DatastoreSources:
    """Opens disks of vSphere providers for reading (the handler's source port)."""

    def __init__(self, sessions: SourceSessions, retries: ReadRetries | None = None, *, timeout: float = 60.0) -> None:
        self._sessions = sessions
        self._retries = retries or ReadRetries()
        self._timeout = timeout
        self._clients: dict[ProviderSpec, RangeClient] = {}

    def close(self) -> None:
        """Close every host's connection pool (at shutdown, after the readers)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    @asynccontextmanager
    async def open(self, provider: ProviderSpec, disk: SourceDisk, connections: int) -> AsyncIterator[SessionReader]:
        """A reader of ``disk``'s flat extent with ``connections`` requests in flight."""
        try:  # a malformed path fails before any login
            flat_file_url(str(parse_endpoint(provider.url)), disk.file_name, disk.datacenter)
        except ValueError as error:
            raise SourceReadError(
                f"disk {disk.key} cannot be read: {error}; the inventory should name it like '[datastore] vm/vm.vmdk'",
                url="",
                code="invalid_disk_path",
            ) from error
        login = await self._sessions.get(provider)
        url = flat_file_url(login.host, disk.file_name, disk.datacenter)
        reader = DatastoreReader(
            url, session_cookie=login.cookie, connections=connections, client=self._client(login, connections)
        )
        async with reader:
            yield SessionReader(reader, self._sessions, login, self._retries)

    def _client(self, login: SourceLogin, connections: int) -> RangeClient:
        """The pool of the provider's host; one made for older settings of the provider is closed."""
        client = self._clients.get(login.spec)
        if client is not None:
            return client
        for spec in [spec for spec in self._clients if spec.name == login.spec.name]:
            self._clients.pop(spec).close()  # reads in flight on it end normally
        client = RangeClient(
            f"https://{login.host}",
            ssl_context=client_context(login.spec),  # its own: urllib3 adjusts the context it is given
            pinned=login.pinned,
            timeout=self._timeout,
            connections=connections,
        )
        self._clients[login.spec] = client
        return client
