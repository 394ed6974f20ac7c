"""Which planner replica runs the state machines: a lease held in the planner's KV bucket.

Every replica serves the API and the event stream; the one holding the lease also
consumes the migration events, resumes after crashes, grants slots and enforces
deadlines. The holder renews the key every ``renew_every`` seconds (compare-and-set on
its revision); another replica watches the key and takes it over, again by
compare-and-set, once it has seen no renewal for ``ttl`` seconds (measured on its own
clock, so clocks need not agree). A holder that finds the key taken, or cannot renew for
``ttl``, has lost it: it stops its active parts and raises :class:`LeaseLost`, so the
process exits and comes back as a standby. On a graceful stop the holder deletes the key,
so the standby takes over at once.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

log = logging.getLogger(__name__)

LEASE_KEY = "lease.active"
WhileHeld = Callable[[asyncio.Event], Awaitable[None]]
"""Runs the active parts until the given event is set (the lease lost, or the service stopping)."""


class LeaseLost(RuntimeError):  # noqa: N818 (it is the event, not an error in the code)
    """This replica no longer holds the lease."""


class Holder(msgspec.Struct, frozen=True, kw_only=True):
    holder: str
    renewal: int = 0


class KvLease:
    """Implements the ``Leadership`` port over one KV key."""

    def __init__(self, kv: KeyValue, holder: str, *, ttl: float = 6.0, renew_every: float = 2.0) -> None:
        if not 0 < renew_every < ttl:
            raise ValueError(f"renew_every ({renew_every}) must be positive and shorter than ttl ({ttl})")
        self._kv = kv
        self._holder = holder
        self._ttl = ttl
        self._renew_every = renew_every
        self._held = False

    def is_leader(self) -> bool:
        return self._held

    async def hold(self, stop: asyncio.Event, while_held: WhileHeld) -> None:
        """Until ``stop``: wait for the lease, then run ``while_held`` for as long as it is ours."""
        revision = await self._acquire(stop)
        if revision is None:
            return
        self._held = True
        log.info("planner %s holds the lease: it runs the migrations", self._holder)
        ending = asyncio.Event()
        relay = asyncio.create_task(_set_when(stop, ending))
        renewing = asyncio.create_task(self._renew(revision, ending), name="renew the planner lease")
        try:
            await while_held(ending)
        finally:
            ending.set()
            relay.cancel()
            lost = await renewing
            self._held = False
        if lost and not stop.is_set():
            raise LeaseLost(f"planner {self._holder} lost the lease; it restarts as a standby")
        with contextlib.suppress(NatsError, KeyNotFoundError):
            await self._kv.delete(LEASE_KEY)  # hand over at once
        log.info("planner %s gave the lease up", self._holder)

    async def _acquire(self, stop: asyncio.Event) -> int | None:
        value = msgspec.json.encode(Holder(holder=self._holder))
        while not stop.is_set():
            try:
                return await self._kv.create(LEASE_KEY, value)
            except KeyWrongLastSequenceError:
                pass
            except NatsError as error:
                log.warning("the planner lease cannot be read (%s); trying again", error)
                await _pause(stop, self._renew_every)
                continue
            last = await self._wait_for_expiry(stop)
            if last is None:
                continue  # deleted: try to create it again
            try:
                return await self._kv.update(LEASE_KEY, value, last=last)
            except KeyWrongLastSequenceError:
                continue  # another standby was quicker, or the holder came back
        return None

    async def _wait_for_expiry(self, stop: asyncio.Event) -> int | None:
        """The revision that went unrenewed for ``ttl``; None when the key was deleted."""
        watcher = await self._kv.watch(LEASE_KEY)
        revision = 0
        try:
            while not stop.is_set():
                try:
                    entry = await watcher.updates(timeout=self._ttl)  # type: ignore[no-untyped-call]
                except TimeoutError:
                    if revision:
                        log.warning("the planner lease was not renewed for %.0f s; taking it over", self._ttl)
                        return revision
                    continue
                if entry is None:
                    continue  # the initial value has been delivered
                if entry.operation in (KV_DEL, KV_PURGE):
                    return None
                revision = entry.revision or revision
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return None

    async def _renew(self, revision: int, ending: asyncio.Event) -> bool:
        """Renew until ``ending``; True when the lease was lost (and ``ending`` is set)."""
        renewal, renewed_at = 0, time.monotonic()
        while True:
            await _pause(ending, self._renew_every)
            if ending.is_set():
                return False
            renewal += 1
            value = msgspec.json.encode(Holder(holder=self._holder, renewal=renewal))
            try:
                revision = await self._kv.update(LEASE_KEY, value, last=revision)
                renewed_at = time.monotonic()
            except KeyWrongLastSequenceError:
                log.error("the planner lease was taken over by another replica")
                break
            except NatsError as error:
                if time.monotonic() - renewed_at < self._ttl:
                    log.warning("the planner lease could not be renewed (%s); trying again", error)
                    continue
                log.error("the planner lease could not be renewed for %.0f s: another replica may hold it", self._ttl)
                break
        ending.set()
        return True


async def _pause(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def _set_when(happened: asyncio.Event, then: asyncio.Event) -> None:
    await happened.wait()
    then.set()
