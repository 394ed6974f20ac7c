"""Logging in to a vSphere provider from its settings and password: the TLS probe, then
the SOAP login (blocking). Used by the inventory watcher and the power operations."""

from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.endpoint import parse_endpoint
from ferry_shared.vsphere.errors import INVALID_SETTINGS, ProviderError
from ferry_shared.vsphere.session import Credentials, Session, open_session
from ferry_shared.vsphere.trust import client_context, normalize_thumbprint, probe


def log_in(spec: ProviderSpec, password: Secret, *, connect_timeout: float, call_timeout: float) -> Session:
    """A logged-in session to ``spec``'s vCenter; a :class:`ProviderError` says why not."""
    endpoint = parse_endpoint(spec.url)
    pinned = normalize_thumbprint(spec.thumbprint) if spec.thumbprint.strip() else ""
    if not spec.username:
        raise ProviderError(INVALID_SETTINGS, "the provider has no username; set the vCenter user to log in as")
    context = client_context(spec)
    probe(endpoint, context, pinned, connect_timeout)
    return open_session(endpoint, context, pinned, Credentials(spec.username, password), call_timeout)
