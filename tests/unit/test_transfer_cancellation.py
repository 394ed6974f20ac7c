"""The transfer's cancellation registry and the runner that stops a copy when its VM is cancelled."""

import asyncio

import pytest

from ferry_transfer.adapters.cancellation import CancellationRegistry
from ferry_transfer.handlers.cancelling import run_unless_cancelled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_cancelled_vm_is_remembered_for_a_while_and_only_so_many() -> None:
    clock = Clock()
    registry = CancellationRegistry(max_entries=2, ttl=60, clock=clock)
    registry.cancel("m1", "vm-1")
    assert registry.is_cancelled("m1", "vm-1")
    assert not registry.is_cancelled("m1", "vm-2")
    assert not registry.is_cancelled("m2", "vm-1")

    registry.cancel("m1", "vm-2")
    registry.cancel("m1", "vm-3")  # over the limit: the oldest goes
    assert not registry.is_cancelled("m1", "vm-1")
    assert registry.is_cancelled("m1", "vm-2") and registry.is_cancelled("m1", "vm-3")

    clock.now += 30
    registry.cancel("m1", "vm-2")  # cancelled again: remembered from now
    clock.now += 45
    assert registry.is_cancelled("m1", "vm-2")
    assert not registry.is_cancelled("m1", "vm-3")


async def test_tracked_copies_are_signalled_and_counted() -> None:
    registry = CancellationRegistry()
    with registry.track("m1", "vm-1") as first, registry.track("m1", "vm-1") as second:
        with registry.track("m1", "vm-2") as other:
            assert registry.copies_in_flight == 3
            registry.cancel("m1", "vm-1")
            assert first.is_set() and second.is_set()
            assert not other.is_set()
        idle = asyncio.ensure_future(registry.wait_idle())
        await asyncio.sleep(0)
        assert not idle.done()
    await asyncio.wait_for(idle, 1)
    assert registry.copies_in_flight == 0


def test_a_copy_of_an_already_cancelled_vm_starts_signalled() -> None:
    registry = CancellationRegistry()
    registry.cancel("m1", "vm-1")
    with registry.track("m1", "vm-1") as signal:
        assert signal.is_set()


async def test_the_runner_returns_the_result_when_not_cancelled() -> None:
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await run_unless_cancelled(work(), asyncio.Event()) == (False, 7)


async def test_the_runner_stops_the_work_when_cancelled_and_lets_it_clean_up() -> None:
    started, cleaned = asyncio.Event(), asyncio.Event()

    async def work() -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()
        return 1

    signal = asyncio.Event()
    runner = asyncio.ensure_future(run_unless_cancelled(work(), signal))
    await started.wait()
    signal.set()
    assert await asyncio.wait_for(runner, 1) == (True, None)
    assert cleaned.is_set()


async def test_the_works_own_failure_propagates() -> None:
    async def work() -> int:
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        await run_unless_cancelled(work(), asyncio.Event())


async def test_cancelling_the_caller_cancels_the_work_too() -> None:
    started, cleaned = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    runner = asyncio.ensure_future(run_unless_cancelled(work(), asyncio.Event()))
    await started.wait()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert cleaned.is_set()
