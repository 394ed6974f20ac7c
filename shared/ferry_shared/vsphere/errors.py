"""Why a vSphere connection failed, in words a user can act on.

Every failure the vSphere adapter expects becomes a :class:`ProviderError` with a
machine-readable ``reason`` (one of the constants below) and a message for people; the
watcher turns it into a ``ProviderStatus(phase=ERROR)``. Messages name the endpoint,
the user and certificate thumbprints, never the password.
"""

from ferry_shared.providers import ProviderPhase, ProviderStatus

INVALID_SETTINGS = "invalid_settings"
"""The provider's settings cannot be used as given (URL, thumbprint, CA bundle)."""
UNREACHABLE = "unreachable"
"""No TCP connection: the name does not resolve, the port refuses, or nothing answers."""
CERTIFICATE_UNTRUSTED = "certificate_untrusted"
"""The server's certificate does not verify against the CA bundle (or system CAs)."""
THUMBPRINT_MISMATCH = "thumbprint_mismatch"
"""The server's certificate is not the pinned one."""
TLS_FAILED = "tls_failed"
"""The TLS handshake failed for another reason (e.g. the port does not speak TLS)."""
NOT_VCENTER = "not_vcenter"
"""The endpoint answers but is not a vCenter SOAP API (or is a single ESXi host)."""
INVALID_LOGIN = "invalid_login"
"""vCenter refused the user name or password."""
NO_PERMISSION = "no_permission"
"""Logged in, but the user may not read the inventory."""
CONNECTION_LOST = "connection_lost"
"""An established connection broke; the watcher reconnects with back-off."""
API_ERROR = "api_error"
"""vCenter answered a call with an unexpected fault."""


class ProviderError(Exception):
    """A connection failure with a reason and a message that are safe to show."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    def status(self) -> ProviderStatus:
        return ProviderStatus(phase=ProviderPhase.ERROR, reason=self.reason, message=self.message)


class SessionLostError(Exception):
    """vCenter no longer knows our session (``NotAuthenticated``): log in again and reload."""


class StoppedError(Exception):
    """The watcher's stop was set while blocking work was under way."""


def fault_text(fault: BaseException) -> str:
    """A vSphere fault's own message (``msg``), or its type name."""
    return str(getattr(fault, "msg", "") or type(fault).__name__)
