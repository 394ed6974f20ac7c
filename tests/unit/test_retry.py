"""The shared back-off: its delays, its reset, its jitter, and waits that end at once
when the loop is stopped or cancelled."""

import asyncio
import time

import pytest

from ferry_shared.retry import Backoff, pause


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    backoff = Backoff(1.0, 60.0)
    assert [backoff.next() for _ in range(9)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert backoff.failures == 9


def test_without_a_cap_delays_keep_doubling() -> None:
    backoff = Backoff(0.5)
    assert [backoff.next() for _ in range(4)] == [0.5, 1.0, 2.0, 4.0]


def test_a_reset_starts_again_from_the_first_delay() -> None:
    backoff = Backoff(1.0, 60.0)
    backoff.next(), backoff.next(), backoff.next()
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next() == 1.0


def test_jitter_adds_at_most_its_bound() -> None:
    backoff = Backoff(1.0, 4.0, jitter=0.5)
    delays = [backoff.next() for _ in range(6)]
    for delay, base in zip(delays, [1.0, 2.0, 4.0, 4.0, 4.0, 4.0], strict=True):
        assert base <= delay <= base + 0.5


async def test_a_pause_ends_at_once_when_stop_is_set() -> None:
    stop = asyncio.Event()
    started = time.monotonic()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    await pause(60.0, stop=stop)
    assert time.monotonic() - started < 1.0


async def test_a_pause_after_stop_does_not_wait() -> None:
    stop = asyncio.Event()
    stop.set()
    started = time.monotonic()
    await pause(60.0, stop=stop)
    assert time.monotonic() - started < 0.5


async def test_a_pause_waits_its_delay_out_when_not_stopped() -> None:
    started = time.monotonic()
    await pause(0.05, stop=asyncio.Event())
    await pause(0.05)
    assert time.monotonic() - started >= 0.1


@pytest.mark.parametrize("with_stop", [False, True], ids=["plain", "with stop"])
async def test_a_cancelled_pause_ends_at_once(with_stop: bool) -> None:
    task = asyncio.create_task(pause(60.0, stop=asyncio.Event() if with_stop else None))
    await asyncio.sleep(0)
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
