"""The planner's long-running jobs: what the active replica runs while it holds the lease
(the event consumer, resuming, storing progress, deadlines), as loops over the use cases."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.deadlines import expire_silent_vms
from ferry_planner.handlers.resume import resume, store_progress

Job = Callable[[asyncio.Event], Awaitable[None]]
DEADLINE_SLACK = 0.05
"""Seconds past a VM's deadline the timer wakes, so the VM is overdue when it looks."""


async def run_active(ports: PlannerPorts, consume: Job, progress_interval: float, ending: asyncio.Event) -> None:
    """Until ``ending``: carry on from the bucket, then consume the migration events, store
    coalesced progress and fail silent VMs; progress is stored once more at the end."""
    await resume(ports)
    try:
        await asyncio.gather(
            consume(ending),
            _store_progress_every(ports, progress_interval, ending),
            _enforce_deadlines(ports, ending),
        )
    finally:
        await store_progress(ports)


async def _store_progress_every(ports: PlannerPorts, interval: float, ending: asyncio.Event) -> None:
    while not ending.is_set():
        await _wait(ending, interval)
        await store_progress(ports)


async def _enforce_deadlines(ports: PlannerPorts, ending: asyncio.Event) -> None:
    """Wake at the next deadline (or after one whole deadline: a VM that starts later
    cannot be due sooner), never by polling the VMs."""
    while not ending.is_set():
        next_deadline = await expire_silent_vms(ports)
        wait = ports.step_deadline
        if next_deadline is not None:
            wait = min(wait, max(0.0, (next_deadline - ports.clock()).total_seconds()) + DEADLINE_SLACK)
        await _wait(ending, wait)


async def _wait(ending: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ending.wait(), seconds)
