"""Blocking ranged ``GET``s over a pool of keep-alive HTTP(S) connections, made from worker threads.

:class:`RangePool` lends each call an idle connection (or opens one) and reads the body
straight into one ``bytes`` object or the caller's buffer. Parsing is ``http.client``'s;
the bulk of the work (``recv``, TLS record decryption, the copy into the buffer) runs in
OpenSSL and the ``io`` module with the GIL released, so threads read in parallel and the
event loop stays free. A pinned SHA-256 thumbprint is checked right after the TLS handshake,
before a request (and its cookie) is sent. Failures are :class:`RangeError` subclasses;
the caller gives them meaning. A connection that failed is closed, never reused.
"""

import http.client
import re
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import urlsplit

from ferry_shared.vsphere.trust import certificate_thumbprint

_CONTENT_RANGE = re.compile(r"^bytes (?P<start>\d+)-(?P<end>\d+)/(?P<total>\d+|\*)$")
# a keep-alive connection the server closed while idle fails like this before any answer
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


Headers = Callable[[], Mapping[str, str]]
"""Extra request headers, asked for each request (so a replaced cookie applies to requests not yet sent)."""


class RangeError(Exception):
    """A ranged read failed; ``retryable``: a later attempt may succeed."""

    retryable = False


class PinMismatchError(RangeError):
    """The server's certificate does not have the pinned thumbprint."""

    def __init__(self, presented: str) -> None:
        super().__init__(f"certificate thumbprint {presented}")
        self.presented = presented


class UntrustedCertificateError(RangeError):
    """The server's certificate failed verification (unknown CA, wrong host name, expired)."""


class BadStatusError(RangeError):
    """The server answered with another status than 206 Partial Content."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP status {status}")
        self.status = status
        self.retryable = status >= 500


class BadContentRangeError(RangeError):
    """A 206 answer for other bytes than asked (``Content-Range`` or ``Content-Length``)."""

    def __init__(self, content_range: str | None, content_length: int | None) -> None:
        super().__init__(f"Content-Range {content_range!r}, Content-Length {content_length}")
        self.content_range = content_range
        self.content_length = content_length


class TransportError(RangeError):
    """No complete answer: refused or dropped connection, timeout, TLS error, malformed answer."""

    retryable = True


class ShortBodyError(RangeError):
    """The connection ended after ``received`` of the ``expected`` body bytes."""

    retryable = True

    def __init__(self, received: int, expected: int) -> None:
        super().__init__(f"{received} of {expected} bytes")
        self.received = received
        self.expected = expected


class Ticket:
    """One request's handle: :meth:`abort` cuts its connection (the request then fails) from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._aborted = False

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


@dataclass(frozen=True)
class _Target:
    https: bool
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    https = parts.scheme == "https"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(https, parts.hostname, parts.port or (443 if https else 80), path)


class _Connection:
    def __init__(self, http: http.client.HTTPConnection) -> None:
        self.http = http
        self.used = False  # has answered a request: it may have gone stale while idle


class RangePool:
    """Ranged reads of ``url`` on up to as many keep-alive connections as threads call it at once.

    ``context`` verifies TLS (``None`` for plain ``http``); ``pinned`` (``AB:CD:…``, or "")
    must match the server's leaf certificate; ``timeout`` bounds connecting and each wait for data.
    """

    def __init__(self, url: str, *, context: ssl.SSLContext | None, pinned: str, timeout: float) -> None:
        self._target = _target(url)
        if self._target.https and context is None:
            raise ValueError("an https URL needs a TLS context")
        self._context = context
        self.pinned = pinned
        self._timeout = timeout
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._closed = False

    def get(self, offset: int, length: int, headers: Headers, ticket: Ticket | None = None) -> bytes:
        """Exactly the bytes ``[offset, offset + length)``, in one allocation of ``length`` bytes."""
        return self._request(offset, length, headers, ticket, None)

    def get_into(self, offset: int, buffer: memoryview, headers: Headers, ticket: Ticket | None = None) -> None:
        """Fill ``buffer`` (writable, contiguous bytes) with the bytes from ``offset`` on."""
        self._request(offset, buffer.nbytes, headers, ticket, buffer)

    @property
    def in_use(self) -> int:
        """Connections lent out now (each to a thread in a request)."""
        with self._lock:
            return len(self._busy)

    def close(self) -> None:
        """Close idle connections and cut those in use (their requests fail); no request starts after."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
        for connection in busy:
            _shut(connection.http.sock)
        for connection in idle:
            connection.http.close()

    def _request(
        self, offset: int, length: int, headers: Headers, ticket: Ticket | None, into: memoryview | None
    ) -> bytes:
        ticket = ticket or Ticket()
        while True:
            connection = self._borrow(ticket)
            reused = connection.used
            try:
                response = self._send(connection, offset, length, headers)
            except _STALE as error:
                self._discard(connection, ticket)
                if reused and not ticket.aborted:
                    continue  # idempotent GET: once more on a fresh connection
                raise TransportError(_describe(error)) from error
            except (OSError, http.client.HTTPException) as error:
                self._discard(connection, ticket)
                raise TransportError(_describe(error)) from error
            except BaseException:
                self._discard(connection, ticket)
                raise
            break
        try:
            body = self._receive(response, offset, length, into)
        except BaseException:
            self._discard(connection, ticket)
            raise
        self._give_back(connection, ticket, keep=not response.will_close)
        return body

    def _borrow(self, ticket: Ticket) -> _Connection:
        with self._lock:
            if self._closed:
                raise TransportError("the reader is closed")
            connection = self._idle.pop() if self._idle else None
            if connection is not None:
                self._busy.add(connection)
        if connection is None:
            connection = self._open()
            with self._lock:
                if self._closed:
                    connection.http.close()
                    raise TransportError("the reader is closed")
                self._busy.add(connection)
        ticket._attach(connection.http.sock)
        return connection

    def _open(self) -> _Connection:
        target = self._target
        connection: http.client.HTTPConnection
        if target.https:
            connection = http.client.HTTPSConnection(
                target.host, target.port, timeout=self._timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(target.host, target.port, timeout=self._timeout)
        try:
            connection.connect()
        except ssl.SSLCertVerificationError as error:
            connection.close()
            raise UntrustedCertificateError(error.verify_message or str(error.reason)) from error
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise TransportError(_describe(error)) from error
        if self.pinned:
            tls = connection.sock
            der = tls.getpeercert(binary_form=True) if isinstance(tls, ssl.SSLSocket) else None
            presented = certificate_thumbprint(der) if der else "none"
            if presented != self.pinned:
                connection.close()
                raise PinMismatchError(presented)
        return _Connection(connection)

    def _send(self, connection: _Connection, offset: int, length: int, headers: Headers) -> http.client.HTTPResponse:
        exchange = connection.http
        exchange.putrequest("GET", self._target.path, skip_accept_encoding=True)
        exchange.putheader("Range", f"bytes={offset}-{offset + length - 1}")
        for name, value in headers().items():
            exchange.putheader(name, value)
        exchange.endheaders()
        connection.used = True
        return exchange.getresponse()

    def _receive(self, response: http.client.HTTPResponse, offset: int, length: int, into: memoryview | None) -> bytes:
        # the head is checked before the body is read: a 200 would be the whole disk
        try:
            if response.status != 206:
                raise BadStatusError(response.status)
            content_range = response.getheader("Content-Range")
            match = _CONTENT_RANGE.match(content_range or "")
            if (
                match is None
                or (int(match["start"]), int(match["end"])) != (offset, offset + length - 1)
                or response.length != length
            ):
                raise BadContentRangeError(content_range, response.length)
            if into is None:
                return response.read()  # Content-Length is known: one bytes object, filled in place
            received = response.readinto(into)
        except http.client.IncompleteRead as error:
            raise ShortBodyError(len(error.partial), length) from None
        except (OSError, http.client.HTTPException) as error:
            raise TransportError(_describe(error)) from error
        if received != length:
            raise ShortBodyError(received, length)
        return b""

    def _give_back(self, connection: _Connection, ticket: Ticket, *, keep: bool) -> None:
        ticket._attach(None)
        with self._lock:
            self._busy.discard(connection)
            if keep and not self._closed and not ticket.aborted:
                self._idle.append(connection)
                return
        connection.http.close()

    def _discard(self, connection: _Connection, ticket: Ticket) -> None:
        self._give_back(connection, ticket, keep=False)


def _shut(sock: socket.socket | None) -> None:
    """Wake a thread blocked on ``sock`` (``close`` from another thread would not)."""
    if sock is None:
        return
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: leaves the TLS object alone


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
