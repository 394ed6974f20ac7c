"""Fan-out of planner changes to every open server-sent-events stream."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

QUEUE_LIMIT = 1000


class Broadcaster:
    """Each subscriber gets its own bounded queue; a subscriber that falls too far
    behind loses the oldest changes and is told so with a ``resync`` change."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, change: dict[str, Any]) -> None:
        for queue in self._queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait({"kind": "resync", "reason": "client too slow; re-read the resources"})
                continue
            queue.put_nowait(change)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
