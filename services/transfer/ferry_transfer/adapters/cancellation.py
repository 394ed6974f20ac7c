"""Cancelling the copies of a VM whose migration a user cancelled.

The planner publishes ``VmCancelRequested``. Every transfer worker must hear it, so
:func:`listen_for_cancellations` reads it through a plain core NATS subscription (a durable
consumer would hand each event to one worker only) and tells the process's
:class:`CancellationRegistry`, which

* sets the cancel signal of every copy of that (migration, VM) in flight here, and
* remembers the VM (the last ``max_entries``, for ``ttl`` seconds), so that a ``CopyDisk``
  for it that arrives later is not copied.

:func:`run_unless_cancelled` runs a copy so that its signal stops it.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from ferry_shared.messages import decode_as
from ferry_shared.migrations import VmCancelRequested

log = logging.getLogger(__name__)

T = TypeVar("T")
VmKey = tuple[str, str]
"""(migration, vm_id)"""


class _Active:
    __slots__ = ("copies", "signal")

    def __init__(self) -> None:
        self.signal = asyncio.Event()
        self.copies = 0


class CancellationRegistry:
    """Which VMs were cancelled lately, and the cancel signals of the copies in flight."""

    def __init__(
        self, *, max_entries: int = 10_000, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_entries = max_entries
        self._ttl = ttl
        self._clock = clock
        self._cancelled: OrderedDict[VmKey, float] = OrderedDict()
        self._active: dict[VmKey, _Active] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def cancel(self, migration: str, vm_id: str) -> None:
        """Remember the VM as cancelled and signal its copies in flight."""
        key = (migration, vm_id)
        self._cancelled.pop(key, None)
        self._cancelled[key] = self._clock()
        while len(self._cancelled) > self._max_entries:
            self._cancelled.popitem(last=False)
        active = self._active.get(key)
        if active is not None:
            log.info("cancelling %d copies of VM %s of migration %s", active.copies, vm_id, migration)
            active.signal.set()

    def is_cancelled(self, migration: str, vm_id: str) -> bool:
        self._expire()
        return (migration, vm_id) in self._cancelled

    @property
    def copies_in_flight(self) -> int:
        return sum(active.copies for active in self._active.values())

    async def wait_idle(self) -> None:
        """Return once no copy is in flight."""
        await self._idle.wait()

    @contextmanager
    def track(self, migration: str, vm_id: str) -> Iterator[asyncio.Event]:
        """Register a copy of the VM for its lifetime; the event is set (maybe already) when it is cancelled."""
        key = (migration, vm_id)
        active = self._active.setdefault(key, _Active())
        active.copies += 1
        self._idle.clear()
        if self.is_cancelled(migration, vm_id):
            active.signal.set()
        try:
            yield active.signal
        finally:
            active.copies -= 1
            if not active.copies:
                del self._active[key]
            if not self._active:
                self._idle.set()

    def _expire(self) -> None:
        oldest = self._clock() - self._ttl
        while self._cancelled:
            key, at = next(iter(self._cancelled.items()))
            if at > oldest:
                break
            del self._cancelled[key]


async def run_unless_cancelled(work: Coroutine[Any, Any, T], cancelled: asyncio.Event) -> tuple[bool, T | None]:
    """Run ``work`` until it ends or ``cancelled`` is set: ``(True, None)`` if cancelled, else ``(False, result)``.

    The work's own exceptions propagate; when the caller itself is cancelled, the work is
    cancelled and awaited before the cancellation goes on.
    """
    task = asyncio.ensure_future(work)
    signal = asyncio.ensure_future(cancelled.wait())
    try:
        await asyncio.wait({task, signal}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        signal.cancel()
        interrupted = not task.done()
        task.cancel()  # no-op when it finished
        await asyncio.wait({task, signal})
    if interrupted:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.info("a cancelled copy ended with %s: %s", type(error).__name__, error)
        return True, None
    return False, task.result()


async def listen_for_cancellations(nc: Client, registry: CancellationRegistry, stop: asyncio.Event) -> None:
    """Feed ``VmCancelRequested`` events to ``registry`` until ``stop`` is set (a background job)."""

    async def on_message(msg: Msg) -> None:
        try:
            event = decode_as(msg.data, VmCancelRequested)
        except msgspec.DecodeError as error:
            log.warning("ignoring an undecodable message on %s: %s", msg.subject, error)
            return
        registry.cancel(event.migration, event.vm_id)

    subscription = await nc.subscribe(VmCancelRequested.subject, cb=on_message)
    await nc.flush()  # the server knows the subscription before this job counts as started
    try:
        await stop.wait()
    finally:
        await subscription.unsubscribe()
