"""Connecting to NATS with Ferry's defaults, and draining on the way out."""

import logging

import nats
from nats.aio.client import Client

log = logging.getLogger(__name__)


async def connect(url: str, *, name: str, connect_timeout: float = 5.0) -> Client:
    """Connect to NATS at ``url`` (comma-separated URLs for a cluster).

    Reconnects forever once connected: a NATS restart must not kill a service.
    """

    async def on_disconnected() -> None:
        log.info("disconnected from NATS")

    async def on_reconnected() -> None:
        log.info("reconnected to NATS")

    async def on_error(error: Exception) -> None:
        log.warning("NATS connection error: %s", error)

    return await nats.connect(
        servers=url.split(","),
        name=name,
        connect_timeout=connect_timeout,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        error_cb=on_error,
    )
