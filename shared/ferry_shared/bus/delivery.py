"""What a handler knows about the delivery it is handling, and how it keeps its lease."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from nats.aio.msg import Msg
from nats.errors import Error as NatsError

log = logging.getLogger(__name__)

RENEWALS_PER_ACK_WAIT = 5
"""In-progress acks a lease sends per ``ack_wait``: the message stays ours through an event-loop
stall of up to four fifths of it (a short ack wait, 5 s for the transfer, tolerates 4 s)."""


class Delivery:
    """One delivery of a message: which attempt it is, and its in-progress lease.

    JetStream redelivers a message whose ack does not arrive within ``ack_wait``;
    a handler that runs longer keeps the message by holding :meth:`lease`.
    """

    def __init__(self, msg: Msg, *, attempt: int, ack_wait: float) -> None:
        self._msg = msg
        self.attempt = attempt
        self.subject = msg.subject
        self._ack_wait = ack_wait

    async def keep_alive(self) -> None:
        """Tell the server this delivery is still being worked on (resets ack_wait)."""
        await self._msg.in_progress()

    @contextlib.asynccontextmanager
    async def lease(self, interval: float | None = None) -> AsyncIterator[None]:
        """Send in-progress acks every ``interval`` seconds (a fifth of ``ack_wait`` by default) while
        the block runs; a renewal that comes later than the ack wait is logged (the message may have
        gone to another consumer meanwhile)."""
        period = interval if interval is not None else self._ack_wait / RENEWALS_PER_ACK_WAIT

        async def renew() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(period)
                now = time.monotonic()
                if now - last > self._ack_wait:
                    log.warning(
                        "the lease of %s was renewed %.1fs after the last renewal (ack wait %.1fs): "
                        "the event loop stalled; the message may be redelivered",
                        self.subject,
                        now - last,
                        self._ack_wait,
                    )
                last = now
                try:
                    await self.keep_alive()
                except NatsError as error:  # disconnected: the next renewal may get through
                    log.warning("the lease of %s could not be renewed (%s); trying again", self.subject, error)

        renewer = asyncio.create_task(renew(), name=f"lease {self.subject}")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
