"""Connecting to NATS with Ferry's defaults (an nkey or password identity over TLS), and draining on the way out."""

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path

import nats.errors
from nats.aio.client import Client

log = logging.getLogger(__name__)

UPGRADED_EOF_WARNING = "returning true from eof_received() has no effect when using ssl"
"""What asyncio logs each time a TLS connection that nats-py upgraded with ``start_tls`` ends:
its stream protocol was made on the plain socket, so it does not know it runs over TLS and
asks to keep the connection half-open, which TLS cannot. Harmless, and not ours to fix."""


class _UpgradedEofFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != UPGRADED_EOF_WARNING


_upgraded_eof_filter = _UpgradedEofFilter()


def quiet_upgraded_tls_eof() -> None:
    """Drop asyncio's :data:`UPGRADED_EOF_WARNING`, and nothing else it logs (idempotent)."""
    logging.getLogger("asyncio").addFilter(_upgraded_eof_filter)  # the same object is added once


class NatsAuthenticationError(RuntimeError):
    """The server refused the identity (or there was none to give): a configuration error, not retried."""


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """A client TLS context trusting only ``ca_file`` (the server's CA)."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))


def read_password(password_file: Path | str) -> str:
    """The password in ``password_file``, without the trailing newline an editor leaves."""
    return Path(password_file).read_text().rstrip("\r\n")


def _identity(creds_file: Path | str | None, user: str | None, password_file: Path | str | None) -> str:
    """How a refusal names the identity: its files and user, never a secret."""
    if user:
        return f"user {user!r} with the password in {password_file or '(no file: FERRY_NATS_PASSWORD_FILE is not set)'}"
    if creds_file:
        return str(creds_file)
    return "no identity (neither FERRY_NATS_CREDS_FILE nor FERRY_NATS_USER is set)"


def _is_auth_refusal(error: BaseException) -> bool:
    if isinstance(error, nats.errors.AuthorizationError | ssl.SSLCertVerificationError):
        return True  # the server refused us, or we refused its certificate: neither heals by retrying
    text = str(error).lower()
    return "authorization violation" in text or "authentication" in text


async def connect(
    url: str,
    *,
    name: str,
    creds_file: Path | str | None = None,
    user: str | None = None,
    password_file: Path | str | None = None,
    ca_file: Path | str | None = None,
    tls_hostname: str | None = None,
    inbox_prefix: str | None = None,
    connect_timeout: float = 5.0,
) -> Client:
    """Connect to NATS at ``url`` (comma-separated URLs for a cluster) as the nkey identity whose
    seed is in ``creds_file``, or as ``user`` with the password read from ``password_file`` (the
    chart's own NATS), trusting the server's certificate only from ``ca_file`` (a
    ``tls://`` URL) for the URL's host or ``tls_hostname``, with replies under ``inbox_prefix`` (the identity's own, see
    :func:`ferry_shared.bus.permissions.inbox_prefix`).

    Reconnects forever once connected: a NATS restart must not kill a service. A refusal of
    the identity at the first connect raises :class:`NatsAuthenticationError` naming its file
    (and user), never the password.
    """
    quiet_upgraded_tls_eof()
    refused = asyncio.Event()
    refusals: list[Exception] = []

    async def on_disconnected() -> None:
        log.info("disconnected from NATS")

    async def on_reconnected() -> None:
        log.info("reconnected to NATS")

    async def on_error(error: Exception) -> None:
        if not client.is_connected and _is_auth_refusal(error):
            refusals.append(error)
            refused.set()
        log.warning("NATS connection error: %s", error)

    options: dict[str, object] = {}
    if creds_file:
        options["nkeys_seed"] = str(creds_file)
    if user:
        options["user"] = user
        options["password"] = read_password(password_file) if password_file else ""
    if ca_file:
        options["tls"] = tls_context(Path(ca_file))
    if tls_hostname:
        options["tls_hostname"] = tls_hostname
    if inbox_prefix:
        options["inbox_prefix"] = inbox_prefix
    client = Client()
    connecting = asyncio.create_task(
        client.connect(
            servers=url.split(","),
            name=name,
            connect_timeout=connect_timeout,  # type: ignore[arg-type]
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            error_cb=on_error,
            **options,  # type: ignore[arg-type]
        )
    )
    refusal = asyncio.create_task(refused.wait())
    try:
        await asyncio.wait({connecting, refusal}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        refusal.cancel()
    if connecting.done():
        connecting.result()  # raises what the first connect raised
        return client
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError, nats.errors.Error, OSError):
        await connecting
    with contextlib.suppress(nats.errors.Error, OSError):
        await client.close()
    identity = _identity(creds_file, user, password_file)
    raise NatsAuthenticationError(f"NATS at {url} and the identity in {identity} did not authenticate: {refusals[0]}")
