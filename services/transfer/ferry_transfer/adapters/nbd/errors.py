"""The NBD client's errors: one failed request versus a connection that is gone.

Raised by :mod:`.negotiation`, :mod:`.connection` and :mod:`.client`; callers in the
transfer service decide what is permanent (a refused export, EPERM) and what is worth a
retry on a new connection (:class:`NbdConnectionError`). They are the domain's sink errors
(:mod:`ferry_transfer.domain.errors`), which the handlers catch.
"""

from ferry_transfer.domain.errors import SinkConnectionLost, SinkRequestRefused

from .protocol import errno_name


class NbdError(SinkRequestRefused):
    """The server (or a local capability check) refused one request; the connection is still usable.

    ``errno`` is the NBD error value (Linux numbering), ``name`` its symbol (``"EINVAL"``).
    """

    def __init__(self, errno: int, message: str) -> None:
        self.errno = errno
        self.name = errno_name(errno)
        self.message = message
        super().__init__(f"{self.name}: {message}")


class NbdConnectionError(SinkConnectionLost):
    """The connection is broken or closed: every outstanding and later request fails with this."""


class NbdHandshakeError(NbdConnectionError):
    """Negotiation failed: no such export, a server we cannot speak to, or a refused option."""


class NbdProtocolError(NbdConnectionError):
    """The server sent something the protocol does not allow; the client hung up."""
