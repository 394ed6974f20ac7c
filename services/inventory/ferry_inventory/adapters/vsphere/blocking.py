"""Running pyvmomi's blocking calls off the event loop without making ``stop`` wait.

:func:`call` runs a function in a worker thread (``asyncio.to_thread``) and returns its
result, unless ``stop`` is set first: then it calls ``interrupt`` (e.g. to cancel a
long-poll) and waits briefly (``INTERRUPT_GRACE`` in all) for the thread, or leaves the thread to finish alone and
hands a late result to ``discard`` (e.g. to log out of a session that opened after
stop), and raises :class:`StoppedError`. Calls that may block for minutes (waiting for a
VM to power off) pass an ``executor`` of their own, so they cannot starve the shared
default pool that the watchers use.
"""

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from ferry_shared.vsphere.errors import StoppedError

T = TypeVar("T")
log = logging.getLogger(__name__)

INTERRUPT_GRACE = 5.0


def _late(task: "asyncio.Future[T]", discard: Callable[[T], None] | None) -> None:
    """Deal with the outcome of a call that was given up on."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.debug("a vSphere call finished after stop with %s", type(error).__name__)
    elif discard is not None:
        threading.Thread(target=discard, args=(task.result(),), name="vsphere-discard", daemon=True).start()


async def call(
    stop: asyncio.Event,
    function: Callable[[], T],
    *,
    interrupt: Callable[[], None] | None = None,  # must not raise
    discard: Callable[[T], None] | None = None,
    executor: Executor | None = None,
) -> T:
    """``function()`` in a worker thread (of ``executor``, else the loop's default pool), or
    :class:`StoppedError` as soon as ``stop`` is set."""
    if stop.is_set():
        raise StoppedError
    in_context = functools.partial(contextvars.copy_context().run, function)  # as asyncio.to_thread does
    task: asyncio.Future[T] = asyncio.get_running_loop().run_in_executor(executor, in_context)
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        return task.result()
    if interrupt is not None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INTERRUPT_GRACE
        await asyncio.wait({asyncio.ensure_future(asyncio.to_thread(interrupt))}, timeout=INTERRUPT_GRACE)
        await asyncio.wait({task}, timeout=max(deadline - loop.time(), 0.0))
    if task.done():
        _late(task, discard)
    else:
        task.add_done_callback(lambda done: _late(done, discard))
    raise StoppedError
