"""The one back-off of Ferry's retry loops, on tenacity's wait strategies.

A loop that retries after a failure keeps a :class:`Backoff`: :meth:`Backoff.next`
gives the delay before the next attempt (the first delay, then twice that, four
times, … up to the cap, plus a random jitter when asked for one) and
:meth:`Backoff.reset` starts over after a success. :func:`pause` waits a delay out,
ending at once when the loop's stop event is set or its task is cancelled.

Used by the inventory's watchers (vSphere, Kubernetes, local target), which retry until
stopped, and by the transfer's datastore reader, which retries one read a few times.
"""

import asyncio
import contextlib
import math

import tenacity


class Backoff:
    """Capped exponential delays with optional jitter; see the module docstring."""

    def __init__(self, initial: float, cap: float = math.inf, *, jitter: float = 0.0) -> None:
        """``initial``: the first delay; ``cap``: the longest (before jitter); ``jitter``:
        up to this many seconds are added at random to each delay."""
        wait: tenacity.wait.wait_base = tenacity.wait_exponential(multiplier=initial, max=cap, exp_base=2)
        if jitter > 0:
            wait = wait + tenacity.wait_random(0, jitter)
        self._wait = wait
        self._failures = 0
        self._state: tenacity.RetryCallState | None = None  # made on the first failure: most never fail

    @property
    def failures(self) -> int:
        """How many delays were handed out since the start or the last reset."""
        return self._failures

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the following one."""
        self._failures += 1
        if self._state is None:
            self._state = tenacity.RetryCallState(retry_object=tenacity.AsyncRetrying(), fn=None, args=(), kwargs={})
        self._state.attempt_number = self._failures
        return float(self._wait(self._state))

    def reset(self) -> None:
        """After a success: the next delay is the first one again."""
        self._failures = 0


async def pause(seconds: float, *, stop: asyncio.Event | None = None) -> None:
    """Wait ``seconds``, or less when ``stop`` is set (at once if it already is)."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
