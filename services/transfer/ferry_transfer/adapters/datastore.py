"""Reads a VM disk's flat file from a vSphere datastore over HTTPS (``GET /folder/...`` with ``Range``).

The copier (:mod:`.copier`) calls :meth:`DatastoreReader.read` for each range of a disk.
The caller logs in with pyvmomi and hands over the ``vmware_soap_session`` cookie (and a
fresh one after a new login); the reader never logs it nor puts it in an error message.
With a pinned certificate thumbprint, every response's TLS peer is checked against it.
"""

import re
import ssl
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlencode

import httpx

from ferry_shared.errors import FerryError
from ferry_shared.vsphere.trust import certificate_thumbprint

SESSION_COOKIE = "vmware_soap_session"
_BACKING = re.compile(r"^\[(?P<datastore>[^\]]+)\]\s*(?P<path>.+)$")
_CONTENT_RANGE = re.compile(r"^bytes (?P<start>\d+)-(?P<end>\d+)/(?P<total>\d+|\*)$")


class SourceReadError(FerryError):
    """A range of the source disk could not be read. ``retryable``: a later attempt may succeed.

    ``code`` says why: ``disk_not_found`` (404), ``datastore_access_denied`` (401/403),
    ``thumbprint_mismatch``, else ``source_read_failed``.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        retryable: bool = False,
        code: str = "source_read_failed",
    ) -> None:
        super().__init__(code, message)
        self.url = url
        self.status = status
        self.retryable = retryable


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
    """Ranged reads of one datastore file on keep-alive connections, ``connections`` requests at a time.

    TLS is verified with ``ssl_context`` if given, else against ``ca_bundle`` (or the system
    store); ``insecure=True`` skips it. ``pinned_thumbprint`` (SHA-256, ``AB:CD:…``) must match
    the server's certificate. Use as an async context manager, or call :meth:`aclose`.
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
    ) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        self.url = url
        self._pinned = pinned_thumbprint
        verify: ssl.SSLContext | bool = False
        if ssl_context is not None:
            verify = ssl_context
        elif not insecure:
            verify = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle is not None else None)
        self._client = httpx.AsyncClient(
            verify=verify,
            headers={"Cookie": session_cookie_header(session_cookie)},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(timeout, pool=None),
        )

    def set_session_cookie(self, cookie: str) -> None:
        """Send ``cookie`` (a new session's) from the next request on."""
        self._client.headers["Cookie"] = session_cookie_header(cookie)

    async def read(self, offset: int, length: int) -> bytes:
        """Exactly the bytes ``[offset, offset + length)``; :class:`SourceReadError` otherwise."""
        if offset < 0 or length <= 0:
            raise ValueError(f"bad range: offset {offset}, length {length}")
        end = offset + length - 1
        where = f"bytes {offset}-{end} of {self.url}"
        try:
            async with self._client.stream("GET", self.url, headers={"Range": f"bytes={offset}-{end}"}) as response:
                self._check_head(response, offset, end, where)  # before the body: a 200 would be the whole disk
                body = await response.aread()
        except httpx.HTTPError as e:
            raise SourceReadError(
                f"reading {where} failed: {type(e).__name__}: {e}; the host may be busy or unreachable, retry later",
                url=self.url,
                retryable=True,
            ) from e
        if len(body) != length:
            raise SourceReadError(
                f"reading {where}: got {len(body)} bytes; the connection was cut, retry later",
                url=self.url,
                status=206,
                retryable=True,
            )
        return body

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> "DatastoreReader":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _check_head(self, response: httpx.Response, offset: int, end: int, where: str) -> None:
        if self._pinned:
            self._check_pin(response, where)
        status = response.status_code
        if status != 206:
            raise SourceReadError(
                f"reading {where}: {_advice(status)}",
                url=self.url,
                status=status,
                retryable=status >= 500,
                code=_STATUS_CODES.get(status, "source_read_failed"),
            )
        content_range = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if content_range is None or (int(content_range["start"]), int(content_range["end"])) != (offset, end):
            raise SourceReadError(
                f"reading {where}: the host answered Content-Range {response.headers.get('content-range')!r}; "
                "the range may lie beyond the end of the disk",
                url=self.url,
                status=status,
            )

    def _check_pin(self, response: httpx.Response, where: str) -> None:
        stream = response.extensions.get("network_stream")
        tls = stream.get_extra_info("ssl_object") if stream is not None else None
        der = tls.getpeercert(binary_form=True) if isinstance(tls, ssl.SSLObject | ssl.SSLSocket) else None
        presented = certificate_thumbprint(der) if der else "none"
        if presented != self._pinned:
            raise SourceReadError(
                f"reading {where}: the host presented a certificate with SHA-256 thumbprint {presented}, "
                f"not the pinned {self._pinned}; if vCenter's certificate was replaced on purpose, update the "
                "provider's thumbprint",
                url=self.url,
                status=response.status_code,
                code="thumbprint_mismatch",
            )


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
