"""Reading and following a JetStream KV bucket through its watch feed (no polling)."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

KvChange = Callable[[str, bytes | None], Awaitable[None]]
"""Called with (key, value), value None when the key was deleted."""


async def read_all(kv: KeyValue) -> dict[str, bytes]:
    """Every live key and its latest value."""
    watcher = await kv.watchall(ignore_deletes=True)
    values: dict[str, bytes] = {}
    try:
        while True:
            entry = await watcher.updates(timeout=60.0)  # type: ignore[no-untyped-call]
            if entry is None:
                break
            if entry.value is not None:
                values[entry.key] = entry.value
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return values


async def follow(kv: KeyValue, on_change: KvChange, stop: asyncio.Event, *, initial_done: asyncio.Event) -> None:
    """Call ``on_change`` for every current key, set ``initial_done``, then for every
    change until ``stop`` is set."""
    watcher = await kv.watchall()
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            update = watcher.updates(timeout=3600.0)  # type: ignore[no-untyped-call]
            next_entry = asyncio.create_task(update)
            done, _ = await asyncio.wait({next_entry, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if next_entry not in done:
                next_entry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await next_entry
                break
            entry = next_entry.result()
            if entry is None:
                initial_done.set()
                continue
            deleted = entry.operation in (KV_DEL, KV_PURGE)
            await on_change(entry.key, None if deleted else entry.value)
    finally:
        stopping.cancel()
        await watcher.stop()  # type: ignore[no-untyped-call]
