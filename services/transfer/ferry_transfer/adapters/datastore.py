"""Reads a VM disk's flat file from a vSphere datastore over HTTPS (``GET /folder/...`` with ``Range``).

The range copier (:mod:`.range_copy`) calls :meth:`DatastoreReader.read` (or :meth:`~DatastoreReader.read_into`)
for each range of a disk. The caller logs in with pyvmomi and hands over the ``vmware_soap_session``
cookie (and a fresh one after a new login); the reader never logs it nor puts it in an error
message. With a pinned certificate thumbprint, every connection's certificate is checked before
the cookie is sent. The HTTP work runs in threads on the keep-alive connections of a urllib3
pool (:mod:`.ranged_http`: the reader's own, or one per datastore host shared by the readers
of its disks), one thread per connection, so the TLS and copy work of N connections runs
outside the event loop and the GIL, on as many cores as there are.
"""

import asyncio
import re
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote, urlencode, urlsplit

from ferry_shared.credentials import Secret
from ferry_transfer.domain.errors import SourceReadError

from .range_errors import (
    BadContentRangeError,
    BadStatusError,
    PinMismatchError,
    RangeError,
    ShortBodyError,
    UntrustedCertificateError,
)
from .ranged_http import RangeClient, Ticket

SESSION_COOKIE = "vmware_soap_session"
_BACKING = re.compile(r"^\[(?P<datastore>[^\]]+)\]\s*(?P<path>.+)$")
_T = TypeVar("_T")


def flat_file_url(host: str, backing_file: str, datacenter: str) -> str:
    """``https://host/folder/<dir>/<name>-flat.vmdk?dcPath=…&dsName=…`` for a backing like ``[ds] vm/vm.vmdk``.

    ``host`` is ``name`` or ``name:port``; ``datacenter`` is the inventory path of the datacenter.
    """
    match = _BACKING.match(backing_file.strip())
    if match is None:
        raise ValueError(f"not a datastore path (expected '[datastore] dir/name.vmdk'): {backing_file!r}")
    path = match["path"]
    if not path.endswith(".vmdk"):
        raise ValueError(f"not a .vmdk file: {backing_file!r}")
    if not path.endswith("-flat.vmdk"):
        path = path.removesuffix(".vmdk") + "-flat.vmdk"
    query = urlencode({"dcPath": datacenter, "dsName": match["datastore"]}, quote_via=quote)
    return f"https://{host}/folder/{quote(path)}?{query}"


def session_cookie_header(cookie: str) -> str:
    """``vmware_soap_session=<value>`` from a full Set-Cookie string (as pyvmomi keeps it) or a bare value."""
    first = cookie.split(";", 1)[0].strip()
    name, separator, value = first.partition("=")
    if not separator:
        return f"{SESSION_COOKIE}={first}"
    if name.strip() != SESSION_COOKIE:
        raise ValueError(f"expected a {SESSION_COOKIE} cookie, got one named {name.strip()!r}")
    return f"{SESSION_COOKIE}={value.strip()}"


class DatastoreReader:
    """Ranged reads of one datastore file on up to ``connections`` keep-alive connections at once.

    ``client`` is the connection pool of the URL's host to read through (the caller closes
    it); without one the reader makes its own: TLS is verified with ``ssl_context`` if given,
    else against ``ca_bundle`` (or the system store); ``insecure=True`` skips it.
    ``pinned_thumbprint`` (SHA-256, ``AB:CD:…``) must match the server's certificate.
    ``timeout`` bounds connecting and each wait for data. More reads than ``connections`` wait
    their turn. Use as an async context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        url: str,
        *,
        session_cookie: str,
        ca_bundle: Path | None = None,
        insecure: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        pinned_thumbprint: str = "",
        connections: int = 4,
        timeout: float = 60.0,
        client: RangeClient | None = None,
    ) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        self.url = url
        self.connections = connections
        self._cookie = Secret(session_cookie_header(session_cookie))
        parts = urlsplit(url)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._owns_client = client is None
        self._client = client or RangeClient(
            url,
            ssl_context=ssl_context,
            ca_bundle=ca_bundle,
            insecure=insecure,
            pinned=pinned_thumbprint,
            timeout=timeout,
            connections=connections,
        )
        if self._client.origin != (parts.scheme, parts.hostname, parts.port):
            raise ValueError(f"{url} is not on the host the client reads from")
        self._threads = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="datastore-read")
        self._running: set[Ticket] = set()
        self._running_lock = threading.Lock()
        self._closed = False

    def set_session_cookie(self, cookie: str) -> None:
        """Send ``cookie`` (a new session's) from the next request on."""
        self._cookie = Secret(session_cookie_header(cookie))

    async def read(self, offset: int, length: int) -> bytes:
        """Exactly the bytes ``[offset, offset + length)``, or :class:`SourceReadError`.

        The body is read into one new ``bytes`` of ``length``; nothing else of its size is allocated.
        """
        _check_range(offset, length)
        return await self._run(offset, length, partial(self._client.get, self._path, offset, length, self._headers))

    async def read_into(self, offset: int, buffer: memoryview | bytearray) -> None:
        """Fill ``buffer`` with the bytes from ``offset`` on (no allocation: for a caller's reusable buffers).

        After a failure or a cancellation the buffer's content is undefined.
        """
        view = memoryview(buffer).cast("B")
        if view.readonly:
            raise ValueError("read_into needs a writable buffer")
        _check_range(offset, view.nbytes)
        await self._run(offset, view.nbytes, partial(self._client.get_into, self._path, offset, view, self._headers))

    @property
    def reads_in_flight(self) -> int:
        """Reads running in a thread now (each on a connection, maybe writing to its buffer)."""
        with self._running_lock:
            return len(self._running)

    async def aclose(self) -> None:
        """Cut the reads in flight (they fail), close the own connections and wait for the threads."""
        if self._closed:
            return
        self._closed = True
        with self._running_lock:
            running = list(self._running)
        for ticket in running:
            ticket.abort()
        if self._owns_client:
            self._client.close()
        await asyncio.to_thread(self._threads.shutdown, wait=True, cancel_futures=True)

    async def __aenter__(self) -> "DatastoreReader":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _headers(self) -> dict[str, str]:
        return {"Cookie": self._cookie.reveal()}

    async def _run(self, offset: int, length: int, request: Callable[[Ticket], _T]) -> _T:
        where = f"bytes {offset}-{offset + length - 1} of {self.url}"
        if self._closed:
            raise SourceReadError(f"reading {where}: the reader is closed", url=self.url)
        ticket = Ticket()
        job = self._threads.submit(self._tracked, request, ticket)
        try:
            return await asyncio.wrap_future(job)
        except RangeError as failure:
            raise self._error(failure, where) from failure
        except asyncio.CancelledError:
            ticket.abort()  # a cancelled read stops at once instead of reading on in its thread
            if not job.cancel():  # it was running: wait until its thread no longer writes to the buffer
                await _settle(job)
            raise

    def _tracked(self, request: Callable[[Ticket], _T], ticket: Ticket) -> _T:
        """Run ``request`` in this thread, counted in :attr:`reads_in_flight`; aborted at once if closed meanwhile."""
        with self._running_lock:
            self._running.add(ticket)
            if self._closed:
                ticket.abort()
        try:
            return request(ticket)
        finally:
            with self._running_lock:
                self._running.discard(ticket)

    def _error(self, failure: RangeError, where: str) -> SourceReadError:
        if isinstance(failure, BadStatusError):
            return SourceReadError(
                f"reading {where}: {_advice(failure.status)}",
                url=self.url,
                status=failure.status,
                retryable=failure.retryable,
                code=_STATUS_CODES.get(failure.status, "source_read_failed"),
            )
        if isinstance(failure, BadContentRangeError):
            return SourceReadError(
                f"reading {where}: the host answered Content-Range {failure.content_range!r} with "
                f"Content-Length {failure.content_length}; the range may lie beyond the end of the disk",
                url=self.url,
                status=206,
            )
        if isinstance(failure, ShortBodyError):
            return SourceReadError(
                f"reading {where}: got {failure.received} bytes; the connection was cut, retry later",
                url=self.url,
                status=206,
                retryable=True,
            )
        if isinstance(failure, PinMismatchError):
            return SourceReadError(
                f"reading {where}: the host presented a certificate with SHA-256 thumbprint {failure.presented}, "
                f"not the pinned {self._client.pinned}; if vCenter's certificate was replaced on purpose, pin the new "
                f"one with `ferry provider update NAME --thumbprint {failure.presented} --password`",
                url=self.url,
                code="thumbprint_mismatch",
            )
        if isinstance(failure, UntrustedCertificateError):
            return SourceReadError(
                f"reading {where}: the host's certificate is not trusted ({failure}); set the provider's "
                "ca_bundle or pin its thumbprint",
                url=self.url,
                code="certificate_untrusted",
            )
        return SourceReadError(
            f"reading {where} failed: {failure}; the host may be busy or unreachable, retry later",
            url=self.url,
            retryable=failure.retryable,
        )


async def _settle(job: Future[_T]) -> None:
    """Wait until ``job`` is done, whatever its outcome, through further cancellations (it was aborted: soon)."""
    waiter = asyncio.wrap_future(job)
    while not waiter.done():
        with suppress(asyncio.CancelledError):
            await asyncio.wait([waiter])  # neither raises the job's error nor cancels it
    if not waiter.cancelled():
        waiter.exception()  # retrieved: the caller was cancelled, the outcome is of no use


def _check_range(offset: int, length: int) -> None:
    if offset < 0 or length <= 0:
        raise ValueError(f"bad range: offset {offset}, length {length}")


_STATUS_CODES = {401: "datastore_access_denied", 403: "datastore_access_denied", 404: "disk_not_found"}


def _advice(status: int) -> str:
    if status == 401:
        return "401 Unauthorized: the vSphere session expired or was logged out; log in again and retry"
    if status == 403:
        return "403 Forbidden: the user lacks the Datastore.Browse / Datastore.FileManagement privilege"
    if status == 404:
        return "404 Not Found: no such file; check the disk's backing file, datastore and datacenter path"
    if status == 416:
        return "416 Range Not Satisfiable: the range lies beyond the end of the file; check the disk size"
    if status == 200:
        return "200 OK instead of 206: the host ignored the Range header; it cannot serve ranged reads"
    if status >= 500:
        return f"{status} from the host: it is busy or failing; retry later"
    return f"unexpected HTTP status {status}"
