"""Why a Kubernetes target cannot be used, in words its owner can act on.

Used by every service that talks to a target cluster (the inventory's watcher, the
kubevirt-writer): they raise :class:`TargetError`, and :func:`classify` turns the
Kubernetes client's and urllib3's exceptions into one. Messages are built only from
safe parts (server URL without user-info, HTTP status, the API server's own ``Status``
message); kubeconfig contents, keys and tokens never reach them.
"""

import json
from urllib.parse import urlsplit, urlunsplit

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError, MaxRetryError, NameResolutionError, NewConnectionError, SSLError

from ferry_shared.errors import FerryError
from ferry_shared.providers import ProviderPhase, ProviderStatus

KUBECONFIG_INVALID = "kubeconfig_invalid"
UNREACHABLE = "unreachable"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
CERTIFICATE_UNTRUSTED = "certificate_untrusted"
KUBEVIRT_MISSING = "kubevirt_missing"
API_ERROR = "api_error"
API_BUSY = "api_busy"
BUSY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers an API server (or a proxy in front of it) gives while it is overloaded (priority
and fairness), starting, or re-initializing a watch cache (``storage is (re)initializing``):
retried, not blamed on the user. A 500 counts only when it asks to be retried (``Retry-After``
or the Status's ``retryAfterSeconds``)."""


class TargetError(FerryError):
    """The target cannot be used now; ``code`` is the status reason."""

    def status(self) -> ProviderStatus:
        return ProviderStatus(phase=ProviderPhase.ERROR, reason=self.code, message=self.message)


class TargetBusyError(TargetError):
    """The API server asked to be called again later: the provider is still connecting."""

    def status(self) -> ProviderStatus:
        return ProviderStatus(phase=ProviderPhase.CONNECTING, reason=self.code, message=self.message)


def safe_url(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def status_message(error: ApiException) -> str:
    """The ``message`` of the API server's ``Status`` body, else the HTTP reason."""
    try:
        body = json.loads(error.body or "")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(error.reason or "")


def _tls_failure(cause: SSLError, server: str) -> TargetError:
    detail = str(cause.args[0]) if cause.args else str(cause)
    if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail:
        return TargetError(
            CERTIFICATE_UNTRUSTED,
            f"the certificate of the API server at {server} is not trusted ({detail}); put the cluster's "
            "CA in the kubeconfig (certificate-authority-data) or check that the server name matches",
        )
    return TargetError(UNREACHABLE, f"the TLS handshake with the API server at {server} failed ({detail})")


def _network_failure(error: HTTPError, server: str, doing: str) -> TargetError:
    cause = error.reason if isinstance(error, MaxRetryError) else error
    if isinstance(cause, SSLError):
        return _tls_failure(cause, server)
    if isinstance(cause, NameResolutionError):
        what = "its host name does not resolve"
    elif isinstance(cause, NewConnectionError):
        what = "the connection was refused or timed out"
    else:
        what = f"{type(cause).__name__} while {doing}"
    return TargetError(
        UNREACHABLE,
        f"cannot reach the API server at {server}: {what}; check the server URL in the kubeconfig "
        "and the network between Ferry and the cluster",
    )


def _asks_retry(error: ApiException) -> bool:
    headers = {key.lower(): value for key, value in (error.headers or {}).items()}
    if "retry-after" in headers:
        return True
    try:
        details = json.loads(error.body or "{}").get("details") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(details, dict) and bool(details.get("retryAfterSeconds"))


def classify(
    error: ApiException | HTTPError | OSError, server: str, doing: str, *, grant: str = "get, list and watch"
) -> TargetError:
    """The failure an exception of a call to ``server`` means; ``doing`` says what the call was
    (``"listing virtualmachines.kubevirt.io"``) for the cases that need it, ``grant`` which
    verbs a refused user needs."""
    if isinstance(error, ApiException):
        if error.status == 401:
            return TargetError(
                UNAUTHORIZED,
                f"the API server at {server} rejected the kubeconfig's credentials (401 Unauthorized): the "
                "client certificate or token is unknown, expired or revoked; provide a current kubeconfig",
            )
        if error.status == 403:
            return TargetError(
                FORBIDDEN,
                f"the API server at {server} refused {doing}: {status_message(error)}; grant the "
                f"kubeconfig's user {grant} on it",
            )
        if error.status in BUSY_STATUSES or (error.status == 500 and _asks_retry(error)):
            return TargetBusyError(
                API_BUSY,
                f"the API server at {server} answered {error.status} while {doing}: {status_message(error)}; "
                "Ferry tries again",
            )
        return TargetError(
            API_ERROR,
            f"the API server at {server} answered {error.status} while {doing}: {status_message(error)}",
        )
    if isinstance(error, HTTPError):
        return _network_failure(error, server, doing)
    return TargetError(UNREACHABLE, f"cannot reach the API server at {server}: {error.strerror or error}")
