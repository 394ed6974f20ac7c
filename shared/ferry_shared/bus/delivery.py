"""What a handler knows about the delivery it is handling, and how it keeps its lease."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from nats.aio.msg import Msg


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
        """Send in-progress acks every ``interval`` seconds while the block runs."""
        period = interval if interval is not None else self._ack_wait / 3

        async def renew() -> None:
            while True:
                await asyncio.sleep(period)
                await self.keep_alive()

        renewer = asyncio.create_task(renew(), name=f"lease {self.subject}")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
