"""Throttled progress of one disk copy: the copier's callback in, at most one event per interval out.

The copier reports every finished range synchronously; :class:`ProgressReporter` keeps the
latest count and one task publishes it, so events leave in order, at most once per
``interval``, and ``bytes_done`` never goes backwards. :meth:`ProgressReporter.flush`
sends the last count after the copy. A failed publish is logged, not fatal: progress is
advisory, the final ``DiskCopied`` is what counts.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from nats.errors import Error as NatsError

log = logging.getLogger(__name__)

PublishProgress = Callable[[int], Awaitable[None]]


class ProgressReporter:
    """Publishes a disk's ``bytes_done`` through ``publish``; use as an async context manager."""

    def __init__(self, publish: PublishProgress, interval: float) -> None:
        self._publish = publish
        self._interval = interval
        self._latest = 0
        self._sent = 0
        self._changed = asyncio.Event()
        self._sending = asyncio.Lock()
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def sent(self) -> int:
        """The highest count published so far."""
        return self._sent

    def update(self, done: int, total: int) -> None:
        """The copier's progress callback: ``done`` of ``total`` bytes accounted for."""
        if done > self._latest:
            self._latest = done
            self._changed.set()

    async def flush(self) -> None:
        """Publish the latest count unless it went out already (call after leaving the context)."""
        await self._send()

    async def __aenter__(self) -> "ProgressReporter":
        self._task = asyncio.create_task(self._run(), name="progress")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._closed = True
        try:
            async with self._sending:  # a publish cut off could land and then be repeated by flush()
                task.cancel()
        finally:
            task.cancel()
            await asyncio.wait({task})  # unlike awaiting it, lets a cancellation of ours through

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self._send()
            if self._closed:  # asyncio.wait_for in the publish can swallow a cancellation (Python < 3.12)
                return
            await asyncio.sleep(self._interval)  # the throttle

    async def _send(self) -> None:
        async with self._sending:
            value = self._latest
            if value <= self._sent:
                return
            try:
                await self._publish(value)
            except (NatsError, TimeoutError, OSError) as error:
                log.warning("publishing progress failed (%s: %s); the copy goes on", type(error).__name__, error)
                return
            self._sent = value
