"""Throttled disk-copy progress: in order, never backwards, at most one event per interval, a last one at the end."""

import asyncio
import contextlib
import itertools

from ferry_testpeers.waiting import eventually
from ferry_transfer.adapters.progress import ProgressReporter

INTERVAL = 0.05


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[float, int]] = []
        self.failures = failures

    async def __call__(self, done: int) -> None:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("nats timeout")
        self.sent.append((asyncio.get_running_loop().time(), done))


async def test_updates_are_throttled_monotonic_and_flushed() -> None:
    recorder = Recorder()
    reporter = ProgressReporter(recorder, INTERVAL)
    async with reporter:
        reporter.update(0, 100)
        for done in range(1, 101):
            reporter.update(done, 100)
            reporter.update(done - 1, 100)  # late reports of lower counts are ignored
            await asyncio.sleep(0.002)
    await reporter.flush()
    values = [done for _, done in recorder.sent]
    times = [at for at, _ in recorder.sent]
    assert values == sorted(set(values))
    assert values[-1] == 100 and 0 not in values
    assert 2 <= len(values) < 100
    assert all(
        later - earlier >= INTERVAL * 0.9 for earlier, later in itertools.pairwise(times[:-1])
    )  # the flush may come sooner
    assert reporter.sent == 100


async def test_a_flush_sends_nothing_new_when_the_last_count_went_out() -> None:
    recorder = Recorder()
    reporter = ProgressReporter(recorder, INTERVAL)
    async with reporter:
        reporter.update(10, 10)
        await eventually(lambda: bool(recorder.sent), timeout=1, what="the first event")
    await reporter.flush()
    assert [done for _, done in recorder.sent] == [10]


async def test_a_failed_publish_is_not_fatal_and_the_count_goes_out_later() -> None:
    recorder = Recorder(failures=1)
    reporter = ProgressReporter(recorder, INTERVAL)
    async with reporter:
        reporter.update(5, 10)
        await asyncio.sleep(INTERVAL / 2)
    assert reporter.sent == 0
    await reporter.flush()
    assert [done for _, done in recorder.sent] == [5]


async def test_leaving_waits_for_a_publish_in_flight_so_the_flush_does_not_repeat_it() -> None:
    started, sent, gate = [], [], asyncio.Event()

    async def slow(done: int) -> None:
        started.append(done)
        await gate.wait()
        sent.append(done)

    reporter = ProgressReporter(slow, INTERVAL)
    async with reporter:
        reporter.update(10, 10)
        await eventually(lambda: bool(started), timeout=1, what="a publish under way")
        asyncio.get_running_loop().call_later(0.02, gate.set)
    await reporter.flush()
    assert sent == [10] and started == [10]


async def test_a_publish_that_swallows_a_cancellation_does_not_hang_the_copy() -> None:
    """``asyncio.wait_for`` inside a NATS request may eat a cancellation that races its answer (Python 3.11)."""
    started: list[int] = []

    async def swallowing(done: int) -> None:
        started.append(done)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()

    reporter = ProgressReporter(swallowing, INTERVAL)

    async def copy() -> None:
        async with reporter:
            reporter.update(10, 10)
            await eventually(lambda: bool(started), timeout=1, what="a publish under way")

    copying = asyncio.ensure_future(copy())
    await eventually(lambda: reporter._closed, timeout=1, what="the copy leaving, waiting for the publish")
    copying.cancel()  # e.g. the worker shuts down
    done, _ = await asyncio.wait({copying}, timeout=1)
    assert copying in done and copying.cancelled()
