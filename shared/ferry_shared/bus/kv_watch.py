"""Reading and following a JetStream KV bucket through its watch feed (no polling).

:func:`follow` keeps a bucket's view current until its stop, whatever happens to the
watch: a quiet bucket is not an end (after ``idle_check`` seconds without a change it
asks the server whether the watch's consumer still exists), and a watch that broke (its
consumer gone after a server restart, the server unreachable) is made again with
back-off. A new watch re-reads the bucket's current values; ``on_change`` is called only
for keys whose revision differs from the one it last saw, and with None for the keys
that disappeared meanwhile, so its view ends up the bucket's, deletes included. Errors
raised by ``on_change`` itself are not the watch's: they end :func:`follow`.
:func:`follow_entries` is the same with each entry's revision.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats.errors
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from ferry_shared.readiness import Health
from ferry_shared.retry import Backoff, pause

log = logging.getLogger(__name__)

KvChange = Callable[[str, bytes | None], Awaitable[None]]
"""Called with (key, value), value None when the key was deleted."""

KvEntry = Callable[[str, int, bytes | None], Awaitable[None]]
"""Called with (key, revision, value), value None when the key was deleted; revision 0 for
a key found gone when a watch was made again (its delete was not seen)."""

IDLE_CHECK_SECONDS = 30.0
"""How long a watch may stay quiet before :func:`follow` checks that it still exists."""


@dataclass(frozen=True)
class Stored:
    """One key's latest value and its revision."""

    value: bytes
    revision: int


READ_TIMEOUT_SECONDS = 60.0


async def read_matching(kv: KeyValue, keys: str = ">", *, within: float = READ_TIMEOUT_SECONDS) -> dict[str, Stored]:
    """Every live key matching ``keys`` (a subject pattern over key names: ``migration.>``)
    with its latest value and revision.

    A watch's "no more initial values" marker can come before the values themselves
    (seen right after a nats-server restart, when the bucket looked empty to the watch
    but was not), so the count of keys the stream holds for the pattern is asked first,
    and the watch is read until every one of them has been delivered (deletes count, and
    are left out of the answer)."""
    info = await kv._js.stream_info(kv._stream, subjects_filter=f"{kv._pre}{keys}")
    expected = len(info.state.subjects or {})
    watcher = await kv.watch(keys)
    seen: dict[str, Stored | None] = {}
    deadline = asyncio.get_running_loop().time() + within
    try:
        while len(seen) < expected:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"read {len(seen)} of the {expected} keys matching {keys!r} in {within:.0f} s")
            entry = await watcher.updates(timeout=left)  # type: ignore[no-untyped-call]
            if entry is None:
                continue  # the marker; the values it should have followed may still come
            deleted = entry.operation in (KV_DEL, KV_PURGE) or entry.value is None
            seen[entry.key] = None if deleted else Stored(value=entry.value, revision=entry.revision or 0)
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return {key: stored for key, stored in seen.items() if stored is not None}


async def read_all(kv: KeyValue) -> dict[str, bytes]:
    """Every live key and its latest value."""
    return {key: stored.value for key, stored in (await read_matching(kv)).items()}


async def follow(
    kv: KeyValue,
    on_change: KvChange,
    stop: asyncio.Event,
    *,
    initial_done: asyncio.Event,
    health: Health | None = None,
    idle_check: float = IDLE_CHECK_SECONDS,
    retry_initial: float = 0.5,
    retry_max: float = 15.0,
) -> None:
    """Call ``on_change`` for every current key, set ``initial_done``, then for every
    change until ``stop`` is set (see the module docstring). ``health`` is not ready until
    the current values are read, and while the watch is broken."""

    async def on_entry(key: str, revision: int, value: bytes | None) -> None:
        await on_change(key, value)

    await follow_entries(
        kv,
        on_entry,
        stop,
        initial_done=initial_done,
        health=health,
        idle_check=idle_check,
        retry_initial=retry_initial,
        retry_max=retry_max,
    )


async def follow_entries(
    kv: KeyValue,
    on_entry: KvEntry,
    stop: asyncio.Event,
    *,
    initial_done: asyncio.Event,
    health: Health | None = None,
    idle_check: float = IDLE_CHECK_SECONDS,
    retry_initial: float = 0.5,
    retry_max: float = 15.0,
) -> None:
    """:func:`follow`, with each entry's revision passed to ``on_entry``."""
    follower = _Follower(kv, on_entry, health or Health(not_ready="reading the bucket"), idle_check)
    backoff = Backoff(retry_initial, retry_max, jitter=retry_initial)
    while not stop.is_set():
        try:
            await follower.watch(stop, initial_done, backoff)
        except _WatchBrokenError as broken:
            delay = backoff.next()
            follower.health.not_ready(f"the KV watch is broken ({broken}); watching again")
            log.warning(
                "KV watch broken (%s); watching again in %.1fs", broken, delay, exc_info=broken.first_time(backoff)
            )
            await pause(delay, stop=stop)


class _WatchBrokenError(Exception):
    """Creating, reading or checking the watch failed; the watch is made again."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {type(cause).__name__}: {cause}")
        self.cause = cause

    def first_time(self, backoff: Backoff) -> BaseException | None:
        """The cause, to log its traceback, on the first failure in a row only."""
        return self.cause if backoff.failures == 1 else None


class _Follower:
    """What :func:`follow` keeps across watches: the revision ``on_change`` saw per live key."""

    def __init__(self, kv: KeyValue, on_entry: KvEntry, health: Health, idle_check: float) -> None:
        self._kv = kv
        self._on_entry = on_entry
        self.health = health
        self._idle_check = idle_check
        self._revisions: dict[str, int] = {}

    async def watch(self, stop: asyncio.Event, initial_done: asyncio.Event, backoff: Backoff) -> None:
        """Follow one watch until ``stop`` (returns) or until it breaks (raises)."""
        try:
            watcher = await self._kv.watchall()
        except Exception as error:
            raise _WatchBrokenError("cannot watch the bucket", error) from error
        current: set[str] | None = set()  # the keys of the current values, until they are all read
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                next_entry = asyncio.create_task(watcher.updates(timeout=self._idle_check))  # type: ignore[no-untyped-call]
                done, _ = await asyncio.wait({next_entry, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if next_entry not in done:
                    next_entry.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await next_entry
                    return
                try:
                    entry = next_entry.result()
                except TimeoutError:  # quiet: is the watch still there?
                    await _check_alive(watcher)
                    continue
                if entry is None:  # every current value is read
                    await self._forget_all_but(current or set())
                    current = None
                    initial_done.set()
                    self.health.ready()
                    backoff.reset()
                    continue
                if current is not None:
                    current.add(entry.key)
                await self._apply(entry)
        finally:
            stopping.cancel()
            await _stop(watcher)

    async def _apply(self, entry: KeyValue.Entry) -> None:
        """Pass on a change ``on_change`` has not seen (a new watch re-reads what it has)."""
        key, revision = entry.key, entry.revision or 0
        if entry.operation in (KV_DEL, KV_PURGE):
            if self._revisions.pop(key, None) is not None:
                await self._on_entry(key, revision, None)
        elif self._revisions.get(key) != revision:
            await self._on_entry(key, revision, entry.value)
            self._revisions[key] = revision

    async def _forget_all_but(self, live: set[str]) -> None:
        """Keys deleted while no watch ran (or while one was broken): delete them."""
        for key in [key for key in self._revisions if key not in live]:
            del self._revisions[key]
            await self._on_entry(key, 0, None)


async def _check_alive(watcher: KeyValue.KeyWatcher) -> None:
    """Raise unless the server still has the watch's consumer (a restart may have lost it)."""
    # nats.py keeps the watch's subscription private; KeyValue.keys() reads it the same way.
    subscription = watcher._sub
    try:
        if subscription is None:
            raise RuntimeError("the watcher has no subscription")
        await subscription.consumer_info()
    except Exception as error:
        raise _WatchBrokenError("the watch's consumer is gone", error) from error


async def _stop(watcher: KeyValue.KeyWatcher) -> None:
    """Stop a watcher; on a broken connection that can fail, which only matters to the log."""
    try:
        await watcher.stop()  # type: ignore[no-untyped-call]
    except (nats.errors.Error, OSError) as error:
        log.warning("could not stop a KV watch: %s: %s", type(error).__name__, error)
