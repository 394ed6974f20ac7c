"""Connecting to NATS with Ferry's defaults (an nkey identity over TLS), and draining on the way out."""

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path

import nats.errors
from nats.aio.client import Client

log = logging.getLogger(__name__)


class NatsAuthenticationError(RuntimeError):
    """The server refused the identity (or there was none to give): a configuration error, not retried."""


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """A client TLS context trusting only ``ca_file`` (the server's CA)."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))


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
    ca_file: Path | str | None = None,
    inbox_prefix: str | None = None,
    connect_timeout: float = 5.0,
) -> Client:
    """Connect to NATS at ``url`` (comma-separated URLs for a cluster) as the nkey identity whose
    seed is in ``creds_file``, trusting the server's certificate only from ``ca_file`` (a
    ``tls://`` URL), with replies under ``inbox_prefix`` (the identity's own, see
    :func:`ferry_shared.bus.permissions.inbox_prefix`).

    Reconnects forever once connected: a NATS restart must not kill a service. A refusal of
    the identity at the first connect raises :class:`NatsAuthenticationError` naming its file.
    """
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
    if ca_file:
        options["tls"] = tls_context(Path(ca_file))
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
    identity = str(creds_file) if creds_file else "no identity (FERRY_NATS_CREDS_FILE is not set)"
    raise NatsAuthenticationError(f"NATS at {url} and the identity in {identity} did not authenticate: {refusals[0]}")
