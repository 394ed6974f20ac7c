"""Group commit of a sink's durability: ranges that end together share one flush, which
starts only after all of them wrote; nobody waits for a range that will not come, a
flush's failure reaches every member, and a range that joins during a flush gets the next."""

import asyncio

import pytest

from ferry_testpeers.waiting import eventually
from ferry_transfer.adapters.group_sync import GroupSync


class Flushes:
    """Counts flushes; ``gate`` (when set) holds each flush until released; ``fail`` makes them fail."""

    def __init__(self) -> None:
        self.count = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self) -> None:
        self.count += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError(5, "Input/output error")


async def test_ranges_that_end_together_share_one_flush_and_a_lone_range_waits_for_nobody() -> None:
    groups, flushes = GroupSync(batch=8, wait=60), Flushes()
    with groups.using("disk"), groups.using("disk"), groups.using("disk"):
        first = asyncio.ensure_future(groups.durable("disk", flushes))
        second = asyncio.ensure_future(groups.durable("disk", flushes))
        await eventually(lambda: groups.waiting("disk") == 2, timeout=5, what="two ranges waiting")
        assert flushes.count == 0 and not first.done(), "a third range still writes: they wait for it"
        await groups.durable("disk", flushes)
        await asyncio.gather(first, second)
    assert flushes.count == 1
    with groups.using("disk"):
        await asyncio.wait_for(groups.durable("disk", flushes), timeout=5)  # alone: at once, not after 60 s
    assert flushes.count == 2


async def test_a_full_batch_flushes_at_once_and_a_partial_one_after_the_wait() -> None:
    groups, flushes = GroupSync(batch=2, wait=0.05), Flushes()
    with groups.using("disk"), groups.using("disk"), groups.using("disk"):
        await asyncio.gather(groups.durable("disk", flushes), groups.durable("disk", flushes))
        assert flushes.count == 1, "two of three: the batch is full"
        await asyncio.wait_for(groups.durable("disk", flushes), timeout=5)  # one of three, the others still open
    assert flushes.count == 2


async def a_range(groups: GroupSync, flushes: Flushes, written: asyncio.Event, key: str = "disk") -> None:
    """One range: it has the sink open until ``written``, then makes it durable."""
    with groups.using(key):
        await written.wait()
        await groups.durable(key, flushes)


async def test_a_range_that_joins_during_a_flush_waits_for_the_next_one() -> None:
    groups, flushes = GroupSync(batch=8, wait=60), Flushes()
    flushes.gate = asyncio.Event()
    written = asyncio.Event()
    first = [asyncio.ensure_future(a_range(groups, flushes, written)) for _ in range(2)]
    other = asyncio.ensure_future(a_range(groups, flushes, written, "other"))
    await eventually(lambda: (groups.users("disk"), groups.users("other")) == (2, 1), timeout=5, what="sinks open")
    written.set()
    await eventually(lambda: flushes.count == 2, timeout=5, what="the two flushes")
    assert not any(task.done() for task in first), "one flush for the two ranges of the disk, one for the other"
    later = asyncio.ensure_future(a_range(groups, flushes, written))
    await eventually(lambda: groups.waiting("disk") == 1, timeout=5, what="the later range waiting")
    assert flushes.count == 2 and not later.done(), "joined while the flush runs: it waits for the next"
    flushes.gate.set()
    await asyncio.wait_for(asyncio.gather(*first, other, later), timeout=5)
    assert flushes.count == 3


async def test_a_failed_flush_reaches_every_member_and_a_cancelled_member_lets_the_rest_go() -> None:
    groups, flushes = GroupSync(batch=8, wait=60), Flushes()
    flushes.fail = True
    with groups.using("disk"), groups.using("disk"):
        results = await asyncio.gather(
            groups.durable("disk", flushes), groups.durable("disk", flushes), return_exceptions=True
        )
    assert [type(result) for result in results] == [OSError, OSError] and flushes.count == 1

    flushes.fail = False
    with groups.using("disk"):
        with groups.using("disk"):
            waiting = asyncio.ensure_future(groups.durable("disk", flushes))
            await eventually(lambda: groups.waiting("disk") == 1, timeout=5, what="one range waiting")
            assert flushes.count == 1
        await asyncio.wait_for(waiting, timeout=5)  # the other range left without finishing (cancelled)
    assert flushes.count == 2


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="batch must be at least 1"):
        GroupSync(batch=0)
