"""Answering core-NATS requests (request/reply, no stream) until the service stops.

:func:`serve_requests` subscribes to a subject in a queue group (one replica answers each
request) and answers every request in a task of its own, so a slow answer (a vCenter
login) does not hold up the next. An answer that fails unexpectedly is logged and not
sent: the asker's request times out, and it says so in its own terms.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

log = logging.getLogger(__name__)

Answer = Callable[[bytes], Awaitable[bytes]]


async def serve_requests(nc: Client, subject: str, queue: str, answer: Answer, stop: asyncio.Event) -> None:
    """Answer requests on ``subject`` with ``answer(request data)`` until ``stop`` is set."""
    running: set[asyncio.Task[None]] = set()

    async def reply(msg: Msg) -> None:
        try:
            data = await answer(msg.data)
            if msg.reply:
                await msg.respond(data)
        except NatsError as error:
            log.warning("could not answer a request on %s: %s", subject, error)
        except Exception:
            log.exception("answering a request on %s failed", subject)

    async def received(msg: Msg) -> None:
        task = asyncio.create_task(reply(msg), name=f"answer {subject}")
        running.add(task)
        task.add_done_callback(running.discard)

    subscription = await nc.subscribe(subject, queue=queue, cb=received)
    try:
        await stop.wait()
    finally:
        await subscription.unsubscribe()
        if running:
            await asyncio.wait(set(running))
