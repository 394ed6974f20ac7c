"""How a ranged HTTP read failed, as :mod:`.ranged_http` reports it; :mod:`.datastore` gives each meaning.

No message holds a request header: the session cookie never appears in one.
"""


class RangeError(Exception):
    """A ranged read failed; ``retryable``: a later attempt may succeed."""

    retryable = False


class PinMismatchError(RangeError):
    """The server's certificate does not have the pinned thumbprint (nothing was sent to it)."""

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
