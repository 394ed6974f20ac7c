"""Following a KV bucket (ferry_shared.bus.kv_watch.follow) on a real nats-server: quiet
periods and a server restart do not end it, and it sees what changed afterwards."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ferry_shared.bus.connection import connect
from ferry_shared.bus.kv_watch import follow
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.readiness import Health
from ferry_shared.service import Bus
from ferry_testpeers.plugin import RestartableNats
from ferry_testpeers.waiting import eventually

pytestmark = pytest.mark.nats


class View:
    """What ``on_change`` was told, as a dict, and every call in order."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.calls: list[tuple[str, bytes | None]] = []

    async def on_change(self, key: str, value: bytes | None) -> None:
        self.calls.append((key, value))
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value


@contextlib.asynccontextmanager
async def following(kv: object, view: View, health: Health, **options: float) -> AsyncIterator[asyncio.Task[None]]:
    stop, loaded = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(follow(kv, view.on_change, stop, initial_done=loaded, health=health, **options))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(loaded.wait(), 10)
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_quiet_bucket_is_followed_through_many_idle_periods(bus: Bus) -> None:
    kv = await ensure_kv(bus.js, "quiet")
    await kv.put("a", b"1")
    view, health = View(), Health(not_ready="loading")
    async with following(kv, view, health, idle_check=0.2) as task:
        assert health.check() is None
        await asyncio.sleep(1.5)  # several idle checks with nothing changing
        assert not task.done(), "the follow ended on a quiet bucket"
        await kv.put("b", b"2")
        await kv.delete("a")
        await eventually(lambda: view.values == {"b": b"2"}, timeout=5, what="the changes after the quiet")
    assert view.calls == [("a", b"1"), ("b", b"2"), ("a", None)]


async def test_a_follow_survives_a_server_restart_and_sees_later_changes(
    restartable_nats_server: RestartableNats,
) -> None:
    nc = await connect(restartable_nats_server.url, name="ferry-test", **restartable_nats_server.connect_options())
    writer = await connect(
        restartable_nats_server.url, name="ferry-test-writer", **restartable_nats_server.connect_options()
    )
    try:
        kv = await ensure_kv(nc.jetstream(), "restarted")
        await kv.put("kept", b"1")
        await kv.put("doomed", b"1")
        view, health = View(), Health(not_ready="loading")
        async with following(kv, view, health, idle_check=0.3, retry_initial=0.1, retry_max=0.5) as task:
            await asyncio.to_thread(restartable_nats_server.restart)
            await eventually(lambda: nc.is_connected and writer.is_connected, timeout=15, what="reconnected")
            other = await ensure_kv(writer.jetstream(), "restarted")
            await other.put("new", b"2")
            await other.delete("doomed")
            await other.put("kept", b"3")
            await eventually(
                lambda: view.values == {"kept": b"3", "new": b"2"}, timeout=30, what="the changes after the restart"
            )
            await eventually(lambda: health.check() is None, timeout=10, what="the watch ready again")
            assert not task.done()
        assert view.calls.count(("kept", b"1")) == 1, "an unchanged key is not announced again"
    finally:
        await writer.close()
        await nc.close()
