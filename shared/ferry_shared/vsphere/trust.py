"""How the vSphere adapter trusts a vCenter's TLS certificate, and the probe that checks it.

Trust comes from the provider's settings, in this order: the PEM ``ca_bundle`` (with host
name checking), else a pinned SHA-256 ``thumbprint`` of the leaf certificate, else no
verification when ``insecure``, else the system's CAs. :func:`probe` opens one TCP+TLS
connection before any credentials are sent, so that an unreachable host, an untrusted
certificate and a thumbprint mismatch are each reported as themselves.
"""

import hashlib
import re
import socket
import ssl

from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.endpoint import Endpoint
from ferry_shared.vsphere.errors import (
    CERTIFICATE_UNTRUSTED,
    INVALID_SETTINGS,
    THUMBPRINT_MISMATCH,
    TLS_FAILED,
    UNREACHABLE,
    ProviderError,
)

_HEX = re.compile(r"[0-9a-fA-F]{64}")


def format_thumbprint(digest: bytes) -> str:
    """``AB:CD:…``: the usual way to write a certificate thumbprint."""
    return ":".join(f"{byte:02X}" for byte in digest)


def certificate_thumbprint(der: bytes) -> str:
    """The SHA-256 thumbprint of a DER certificate."""
    return format_thumbprint(hashlib.sha256(der).digest())


def normalize_thumbprint(text: str) -> str:
    """A pinned thumbprint in canonical form (upper case, colon-separated)."""
    compact = re.sub(r"[\s:]", "", text.strip())
    compact = compact.removeprefix("sha256").removeprefix("SHA256").lstrip("=")
    if not _HEX.fullmatch(compact):
        raise ProviderError(
            INVALID_SETTINGS,
            f"the thumbprint {text!r} is not a SHA-256 thumbprint (64 hex digits, usually written AB:CD:…)",
        )
    return format_thumbprint(bytes.fromhex(compact))


def client_context(spec: ProviderSpec) -> ssl.SSLContext:
    """The TLS context for talking to the provider (see the module docstring)."""
    if spec.ca_bundle.strip():
        try:
            return ssl.create_default_context(cadata=spec.ca_bundle)
        except (ssl.SSLError, ValueError) as error:
            raise ProviderError(
                INVALID_SETTINGS, "ca_bundle is not a PEM certificate (or bundle); paste the CA's PEM text"
            ) from error
    if spec.thumbprint.strip() or spec.insecure:
        return _unverified_context()
    return ssl.create_default_context()


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except socket.gaierror as error:
        raise ProviderError(
            UNREACHABLE, f"cannot resolve {endpoint.host} ({error.strerror}); check the provider's url"
        ) from error
    except ConnectionRefusedError as error:
        raise ProviderError(
            UNREACHABLE, f"{endpoint} refused the connection; check the port and that vCenter is running"
        ) from error
    except TimeoutError as error:
        raise ProviderError(
            UNREACHABLE, f"no answer from {endpoint} within {timeout:.0f}s; check the address and firewalls"
        ) from error
    except OSError as error:
        raise ProviderError(UNREACHABLE, f"cannot connect to {endpoint}: {error.strerror or error}") from error


def _handshake(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> bytes:
    """The DER leaf certificate the server presents through ``context``."""
    with _connect(endpoint, timeout) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=endpoint.host) as tls:
                der = tls.getpeercert(binary_form=True)
        except ssl.SSLCertVerificationError:
            raise  # an SSLError too, but probe() reports it, with the thumbprint to pin
        except ssl.SSLError as error:
            raise ProviderError(
                TLS_FAILED,
                f"the TLS handshake with {endpoint} failed ({error.reason or error}); is this vCenter's HTTPS address?",
            ) from error
        except OSError as error:
            raise ProviderError(
                UNREACHABLE, f"{endpoint} closed the connection during the TLS handshake ({error})"
            ) from error
    if not der:
        raise ProviderError(TLS_FAILED, f"{endpoint} presented no certificate")
    return der


def probe(endpoint: Endpoint, context: ssl.SSLContext, pinned: str, timeout: float) -> str:
    """Connect once and check the certificate; returns its SHA-256 thumbprint.

    ``pinned`` is the expected thumbprint in canonical form, or empty.
    """
    try:
        presented = certificate_thumbprint(_handshake(endpoint, context, timeout))
    except ssl.SSLCertVerificationError as error:
        raise ProviderError(
            CERTIFICATE_UNTRUSTED,
            f"the certificate of {endpoint} is not trusted: {error.verify_message or error.reason}; "
            f"set ca_bundle to the PEM of the CA that signed it, or pin the certificate's thumbprint"
            f"{_thumbprint_hint(endpoint, timeout)}",
        ) from error
    if pinned and presented != pinned:
        raise ProviderError(
            THUMBPRINT_MISMATCH,
            f"{endpoint} presented a certificate with SHA-256 thumbprint {presented}, but the provider "
            f"pins {pinned}; if vCenter's certificate was replaced on purpose, pin the new one with "
            f"`ferry provider update NAME --thumbprint {presented} --password`",
        )
    return presented


def _thumbprint_hint(endpoint: Endpoint, timeout: float) -> str:
    """`` (its SHA-256 thumbprint is …)`` for an untrusted certificate, so a user can pin it."""
    try:
        der = _handshake(endpoint, _unverified_context(), timeout)
    except ProviderError:
        return ""
    return f" (its SHA-256 thumbprint is {certificate_thumbprint(der)})"
