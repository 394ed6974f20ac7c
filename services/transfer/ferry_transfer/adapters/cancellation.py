"""Cancelling the copies of a VM whose migration a user cancelled.

The planner publishes ``VmCancelRequested``. Every transfer worker hears it through
:func:`ferry_transfer.adapters.cancel_feed.follow_cancellations` (its own consumer on the
events stream, replaying the past and re-created after NATS restarts), which tells the
process's :class:`CancellationRegistry`, which

* sets the cancel signal of every copy of that (migration, VM) in flight here, and
* remembers the VM (the last ``max_entries``, for ``ttl`` seconds), so that a disk or range
  of it that arrives later is not copied.

The registry is the handlers' :class:`~ferry_transfer.domain.ports.Cancellations` port:
they await :meth:`CancellationRegistry.caught_up` (the replay of past cancels is done)
before they trust :meth:`CancellationRegistry.is_cancelled`, and run a copy so that its
signal stops it (:func:`ferry_transfer.handlers.cancelling.run_unless_cancelled`).
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

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
        self,
        *,
        max_entries: int = 10_000,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        replaying: bool = False,
        replay_wait: float = 10.0,
    ) -> None:
        self._max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._cancelled: OrderedDict[VmKey, float] = OrderedDict()
        self._active: dict[VmKey, _Active] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._caught_up = asyncio.Event()
        self._replay_wait = replay_wait
        if not replaying:
            self._caught_up.set()

    def mark_caught_up(self) -> None:
        """The cancels of the recent past are all known now."""
        self._caught_up.set()

    async def caught_up(self) -> None:
        """Wait (up to ``replay_wait`` seconds) until past cancels are replayed; after that, go on regardless."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._replay_wait):
                await self._caught_up.wait()

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
        oldest = self._clock() - self.ttl
        while self._cancelled:
            key, at = next(iter(self._cancelled.items()))
            if at > oldest:
                break
            del self._cancelled[key]
