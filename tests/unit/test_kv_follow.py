"""follow() over a hand-written KV fake: a quiet watch is checked, not ended; a broken watch is
made again and the re-read passes on only what changed meanwhile, deletes included; errors of
``on_change`` itself end the follow."""

import asyncio
from dataclasses import dataclass, field

import pytest
from nats.js.kv import KV_DEL, KeyValue

from ferry_shared.bus.kv_watch import follow
from ferry_shared.readiness import Health
from ferry_testpeers.waiting import eventually


class ConsumerGoneError(Exception):
    """The fake server lost the watch's consumer."""


@dataclass
class FakeSubscription:
    gone: bool = False
    checks: int = 0

    async def consumer_info(self) -> object:
        self.checks += 1
        if self.gone:
            raise ConsumerGoneError("consumer not found")
        return object()


@dataclass
class FakeWatcher:
    updates_queue: asyncio.Queue[KeyValue.Entry | None] = field(default_factory=asyncio.Queue)
    _sub: FakeSubscription = field(default_factory=FakeSubscription)
    stopped: bool = False

    async def updates(self, timeout: float) -> KeyValue.Entry | None:  # noqa: ASYNC109 - nats.py's signature
        return await asyncio.wait_for(self.updates_queue.get(), timeout)

    async def stop(self) -> None:
        self.stopped = True


class FakeKv:
    """Keys with revisions; live watchers hear of changes unless ``quietly``."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[int, bytes]] = {}
        self.revision = 0
        self.watchers: list[FakeWatcher] = []
        self.refuse_watches = 0

    async def watchall(self) -> FakeWatcher:
        if self.refuse_watches:
            self.refuse_watches -= 1
            raise ConnectionError("no server")
        watcher = FakeWatcher()
        for key, (revision, value) in self.data.items():
            watcher.updates_queue.put_nowait(entry(key, value, revision))
        watcher.updates_queue.put_nowait(None)
        self.watchers.append(watcher)
        return watcher

    def put(self, key: str, value: bytes, *, quietly: bool = False) -> None:
        self.revision += 1
        self.data[key] = (self.revision, value)
        if not quietly:
            self.watchers[-1].updates_queue.put_nowait(entry(key, value, self.revision))

    def delete(self, key: str, *, quietly: bool = False) -> None:
        self.revision += 1
        del self.data[key]
        if not quietly:
            self.watchers[-1].updates_queue.put_nowait(entry(key, None, self.revision, operation=KV_DEL))


def entry(key: str, value: bytes | None, revision: int, *, operation: str | None = None) -> KeyValue.Entry:
    return KeyValue.Entry(
        bucket="b", key=key, value=value, revision=revision, delta=0, created=None, operation=operation
    )


class Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes | None]] = []

    async def __call__(self, key: str, value: bytes | None) -> None:
        self.seen.append((key, value))


async def test_a_broken_watch_is_made_again_and_passes_on_only_what_changed_meanwhile() -> None:
    kv, calls, health = FakeKv(), Calls(), Health(not_ready="loading")
    kv.put("same", b"1", quietly=True)
    kv.put("changed", b"1", quietly=True)
    kv.put("deleted", b"1", quietly=True)
    stop, loaded = asyncio.Event(), asyncio.Event()
    options = {"idle_check": 0.02, "retry_initial": 0.01, "retry_max": 0.02}
    task = asyncio.create_task(follow(kv, calls, stop, initial_done=loaded, health=health, **options))  # type: ignore[arg-type]
    await asyncio.wait_for(loaded.wait(), 5)
    assert health.check() is None
    kv.put("live", b"1")
    await eventually(lambda: ("live", b"1") in calls.seen, timeout=5, what="a live change")

    kv.refuse_watches = 2  # the first two watches after the break fail too
    kv.watchers[-1]._sub.gone = True
    kv.put("changed", b"2", quietly=True)
    kv.delete("deleted", quietly=True)
    await eventually(lambda: not health.is_ready, timeout=5, what="not ready while broken")
    assert "the KV watch is broken" in (health.check() or "")
    await eventually(lambda: len(kv.watchers) == 2, timeout=5, what="a new watch")
    await eventually(lambda: health.is_ready, timeout=5, what="ready once re-read")

    stop.set()
    await asyncio.wait_for(task, 5)
    assert calls.seen == [
        ("same", b"1"),
        ("changed", b"1"),
        ("deleted", b"1"),
        ("live", b"1"),
        ("changed", b"2"),
        ("deleted", None),
    ]
    assert all(watcher.stopped for watcher in kv.watchers)


async def test_a_quiet_watch_is_checked_and_kept() -> None:
    kv, calls = FakeKv(), Calls()
    stop, loaded = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(follow(kv, calls, stop, initial_done=loaded, idle_check=0.01))  # type: ignore[arg-type]
    await asyncio.wait_for(loaded.wait(), 5)
    await eventually(lambda: kv.watchers[0]._sub.checks >= 5, timeout=5, what="several idle checks")
    assert len(kv.watchers) == 1 and not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_an_error_of_on_change_ends_the_follow() -> None:
    kv = FakeKv()
    kv.put("a", b"1", quietly=True)

    async def broken(key: str, value: bytes | None) -> None:
        raise KeyError(key)

    with pytest.raises(KeyError):
        await asyncio.wait_for(follow(kv, broken, asyncio.Event(), initial_done=asyncio.Event()), 5)  # type: ignore[arg-type]
