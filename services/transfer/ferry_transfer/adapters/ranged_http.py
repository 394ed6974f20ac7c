"""Blocking ranged ``GET``s to one HTTP(S) host on a urllib3 connection pool, made from worker threads.

:class:`RangeClient` is one ``urllib3`` pool per datastore host: up to ``connections``
keep-alive connections (a request waits for a free one), shared by every file read from
that host. A pinned SHA-256 thumbprint is urllib3's ``assert_fingerprint``, checked right
after the TLS handshake, before any request byte (so before the session cookie) is sent;
otherwise the SSL context or the CA bundle verifies the certificate, or, in insecure mode,
nothing does. Bodies are read with ``preload_content=False``: into one ``bytes`` of the
range's length, or into the caller's buffer. Failures are :mod:`.range_errors`; a
connection that failed is closed, never reused. A :class:`Ticket` lets another thread cut
one request's connection (cancellation).
"""

import http.client
import logging
import math
import re
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError, InsecureRequestWarning, ProtocolError, SSLError
from urllib3.util.ssl_match_hostname import CertificateError

from ferry_shared.vsphere.trust import certificate_thumbprint

from .range_errors import (
    BadContentRangeError,
    BadStatusError,
    PinMismatchError,
    RangeError,
    ShortBodyError,
    TransportError,
    UntrustedCertificateError,
)

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes (?P<start>\d+)-(?P<end>\d+)/(?P<total>\d+|\*)")
_FAILURES = (HTTPError, OSError, http.client.HTTPException)

Headers = Callable[[], Mapping[str, str]]
"""Extra request headers, asked for each request (so a replaced cookie applies to requests not yet sent)."""


class Ticket:
    """One request's handle: :meth:`abort` cuts its connection (the request then fails) from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._aborted = False
        self.reused = False
        """Whether the request went out on a connection that had answered one before (it may have gone stale)."""

    @property
    def aborted(self) -> bool:
        return self._aborted

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            _shut(self._socket)

    def _attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._socket = sock
            if self._aborted:
                _shut(sock)


class _Current(threading.local):
    ticket: Ticket | None = None


_current = _Current()
"""The ticket of the request this thread is making: the pool's connections report their socket to it."""


def _connected(sock: socket.socket | None) -> None:
    if _current.ticket is not None:
        _current.ticket._attach(sock)


def _sending(sock: socket.socket | None, served_on: socket.socket | None) -> None:
    if _current.ticket is not None:
        _current.ticket.reused = sock is not None and sock is served_on
        _current.ticket._attach(sock)


class _Connection(HTTPConnection):
    served_on: socket.socket | None = None
    """The socket of this connection's last request (a plain connection opens its socket in ``request``)."""

    def connect(self) -> None:
        super().connect()
        _connected(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _sending(self.sock, self.served_on)
        super().request(*args, **kwargs)
        self.served_on = self.sock


class _TlsConnection(HTTPSConnection):
    served_on: socket.socket | None = None

    def connect(self) -> None:
        super().connect()  # the TLS handshake and the pinned-thumbprint check: nothing sent yet
        _connected(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _sending(self.sock, self.served_on)
        super().request(*args, **kwargs)
        self.served_on = self.sock


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


def _quiet_insecure_warnings() -> None:
    """urllib3 warns on every unverified request; insecure mode was asked for, so one log line per client
    says it instead. Installed per client (the same filter again replaces itself: the list does not grow)."""
    warnings.filterwarnings("ignore", category=InsecureRequestWarning, module=r"urllib3\.connectionpool")


class RangeClient:
    """Ranged reads from the host of ``origin`` (``scheme://host[:port]``) on up to ``connections`` connections.

    TLS: ``ssl_context`` if given, else ``ca_bundle`` (or the system's CAs); ``insecure``
    verifies nothing. ``pinned`` (``AB:CD:…``, or "") must match the leaf certificate.
    ``timeout`` bounds connecting, each wait for data and the wait for a free connection.
    """

    def __init__(
        self,
        origin: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        ca_bundle: Path | None = None,
        insecure: bool = False,
        pinned: str = "",
        timeout: float,
        connections: int,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {origin!r}")
        self.origin = (parts.scheme, parts.hostname, parts.port)
        self.pinned = pinned
        self._timeout = timeout
        self._closed = False
        self._pool: HTTPConnectionPool
        limits: dict[str, Any] = {"maxsize": connections, "block": True, "retries": False}
        limits["timeout"] = Timeout(connect=timeout, read=timeout)
        if parts.scheme == "http":
            self._pool = _Pool(parts.hostname, parts.port, **limits)
            return
        if ssl_context is not None:
            trust: dict[str, Any] = {"ssl_context": ssl_context}
            verified = ssl_context.verify_mode != ssl.CERT_NONE
        elif insecure:
            trust, verified = {"cert_reqs": "CERT_NONE"}, False
        else:
            trust, verified = {"cert_reqs": "CERT_REQUIRED", "ca_certs": str(ca_bundle) if ca_bundle else None}, True
        if not verified and not pinned:
            _quiet_insecure_warnings()
            log.warning("reading from %s without checking its TLS certificate (insecure)", parts.hostname)
        self._pool = _TlsPool(parts.hostname, parts.port, assert_fingerprint=pinned or None, **trust, **limits)

    def get(self, path: str, offset: int, length: int, headers: Headers, ticket: Ticket) -> bytes:
        """Exactly the bytes ``[offset, offset + length)`` of ``path`` (and query), in one ``bytes`` of ``length``."""
        return self._request(path, offset, length, headers, ticket, None)

    def get_into(self, path: str, offset: int, buffer: memoryview, headers: Headers, ticket: Ticket) -> None:
        """Fill ``buffer`` (writable, contiguous bytes) with the bytes of ``path`` from ``offset`` on."""
        self._request(path, offset, buffer.nbytes, headers, ticket, buffer)

    def close(self) -> None:
        """Close the idle connections; those in use close when their request ends; no request starts after."""
        self._closed = True
        self._pool.close()

    def _request(
        self, path: str, offset: int, length: int, headers: Headers, ticket: Ticket, into: memoryview | None
    ) -> bytes:
        response = self._open(path, offset, length, headers, ticket)
        try:
            body = _receive(response, offset, length, into)
        except BaseException:
            response.close()  # closes its connection: never reused
            response.release_conn()
            raise
        finally:
            ticket._attach(None)
        response.release_conn()
        return body

    def _open(self, path: str, offset: int, length: int, headers: Headers, ticket: Ticket) -> BaseHTTPResponse:
        while True:
            if self._closed:
                raise TransportError("the reader is closed")
            if ticket.aborted:
                raise TransportError("the read was cancelled")
            ticket.reused = False
            request_headers = {"Range": f"bytes={offset}-{offset + length - 1}", **headers()}
            _current.ticket = ticket
            try:
                return self._pool.urlopen(
                    "GET",
                    path,
                    headers=request_headers,
                    retries=False,
                    redirect=False,
                    preload_content=False,
                    decode_content=False,
                    release_conn=False,
                    pool_timeout=math.ceil(self._timeout),  # urllib3 types it int
                )
            except ProtocolError as error:
                ticket._attach(None)
                if ticket.reused and not ticket.aborted:
                    continue  # a kept-alive connection the server had closed: idempotent GET, once more
                raise TransportError(_describe(error)) from error
            except SSLError as error:
                ticket._attach(None)
                raise self._tls_failure(error) from error
            except _FAILURES as error:
                ticket._attach(None)
                raise TransportError(_describe(error)) from error
            finally:
                _current.ticket = None

    def _tls_failure(self, error: SSLError) -> RangeError:
        cause = _cause(error)
        if isinstance(cause, ssl.SSLCertVerificationError | CertificateError):
            return UntrustedCertificateError(getattr(cause, "verify_message", "") or str(cause))
        if self.pinned:
            try:
                presented = _presented_thumbprint(self.origin[1], self._pool.port or 443, self._timeout)
            except OSError:
                return TransportError(_describe(error))
            if presented != self.pinned:
                return PinMismatchError(presented)
        return TransportError(_describe(error))


def _receive(response: BaseHTTPResponse, offset: int, length: int, into: memoryview | None) -> bytes:
    # the head is checked before the body is read: a 200 would be the whole disk
    if response.status != 206:
        raise BadStatusError(response.status)
    content_range = response.headers.get("Content-Range")
    match = _CONTENT_RANGE.fullmatch(content_range or "")
    declared = _length(response.headers.get("Content-Length"))
    if match is None or (int(match["start"]), int(match["end"])) != (offset, offset + length - 1) or declared != length:
        raise BadContentRangeError(content_range, declared)
    try:
        if into is None:
            body = response.read(length)  # one bytes object of length, filled by the socket's reads
            received = len(body)
        else:
            body, received = b"", _fill(response, into)
    except ProtocolError as error:
        cause = _cause(error)
        if isinstance(cause, http.client.IncompleteRead):  # urllib3's counts bytes, http.client's keeps them
            partial = cause.partial
            raise ShortBodyError(partial if isinstance(partial, int) else len(partial), length) from None
        raise TransportError(_describe(error)) from error
    except _FAILURES as error:
        raise TransportError(_describe(error)) from error
    if received != length:
        raise ShortBodyError(received, length)
    return body


def _fill(response: BaseHTTPResponse, into: memoryview) -> int:
    """Read the body straight into ``into``; the bytes read (fewer if the body ends early).

    urllib3's ``readinto`` reads into a new ``bytes`` and copies it (a fresh mapping and one
    more pass over every byte), so this reads through the ``http.client`` response it wraps,
    whose ``readinto`` fills the caller's buffer from the socket. urllib3 keeps that response
    as ``_fp``; should a later urllib3 not, its own ``readinto`` is used.
    """
    raw = getattr(response, "_fp", None)
    if not isinstance(raw, http.client.HTTPResponse):
        return response.readinto(into)
    filled = 0
    while filled < into.nbytes:
        got = raw.readinto(into[filled:])
        if not got:
            break
        filled += got
    return filled


def _length(header: str | None) -> int | None:
    return int(header) if header is not None and header.isdigit() else None


def _presented_thumbprint(host: str, port: int, timeout: float) -> str:
    """The SHA-256 thumbprint of the certificate the host presents (a handshake, nothing sent after it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    return certificate_thumbprint(der) if der else "none"


def _cause(error: BaseException) -> BaseException | None:
    """The exception urllib3 wrapped in ``error`` (its ``ProtocolError`` and ``SSLError`` carry it in ``args``)."""
    return next((arg for arg in error.args if isinstance(arg, BaseException)), error.__cause__)


def _describe(error: BaseException) -> str:
    inner = _cause(error) if isinstance(error, ProtocolError | SSLError) else None
    shown = inner or error
    text = str(shown)
    return f"{type(shown).__name__}: {text}" if text else type(shown).__name__


def _shut(sock: socket.socket | None) -> None:
    """Wake a thread blocked on ``sock`` (``close`` from another thread would not)."""
    if sock is None:
        return
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: leaves the TLS object alone
