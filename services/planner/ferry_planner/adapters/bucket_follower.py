"""Following the planner's own bucket, so each replica sees what the others wrote.

One KV watch over the whole bucket; every entry goes to ``on_entry`` with its key,
revision and value (deletes are skipped: the planner never deletes a migration key, and
a deleted resource only asks for revalidation, which reads the bucket anyway). The watch
first replays the current values, then follows; it is re-created after any error with
the shared back-off, and replaying is harmless (the store skips revisions it has).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.errors import Error as NatsError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from ferry_shared.retry import Backoff, pause

log = logging.getLogger(__name__)

OnEntry = Callable[[str, int, bytes | None], Awaitable[None]]
"""Called with (key, revision, value); value None for a delete."""
IDLE_TIMEOUT = 3600.0


async def follow_bucket(kv: KeyValue, on_entry: OnEntry, stop: asyncio.Event) -> None:
    """Give ``on_entry`` every entry of the bucket, then every change, until ``stop``."""
    backoff = Backoff(0.5, 10.0)
    while not stop.is_set():
        try:
            await _follow_once(kv, on_entry, stop)
            backoff.reset()
        except (NatsError, TimeoutError, ConnectionError) as error:
            delay = backoff.next()
            log.warning("following the planner bucket failed (%s); again in %.1f s", error, delay)
            await pause(delay, stop=stop)


async def _follow_once(kv: KeyValue, on_entry: OnEntry, stop: asyncio.Event) -> None:
    watcher = await kv.watch(">")
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            update = asyncio.create_task(watcher.updates(timeout=IDLE_TIMEOUT))  # type: ignore[no-untyped-call]
            done, _ = await asyncio.wait({update, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if update not in done:
                update.cancel()
                return
            try:
                entry = update.result()
            except TimeoutError:
                continue  # an hour without a change is not an error
            if entry is None:
                continue  # the replay of the current values is done
            deleted = entry.operation in (KV_DEL, KV_PURGE)
            await on_entry(entry.key, entry.revision or 0, None if deleted else entry.value)
    finally:
        stopping.cancel()
        await watcher.stop()  # type: ignore[no-untyped-call]
