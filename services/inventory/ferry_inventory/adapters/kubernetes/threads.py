"""Blocking Kubernetes client calls made from the event loop without ever holding up a
stop: the call runs in a daemon thread, and the caller stops waiting as soon as stop is
set (the thread then ends on its own, at its next timeout). Used by the session.
"""

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _settle(future: "asyncio.Future[T]", result: T | None, error: BaseException | None) -> None:
    if future.done():  # cancelled: the caller stopped waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]  # None only with an error


async def unless_stopped(stop: asyncio.Event, call: Callable[[], T], name: str) -> T | None:
    """``call()``'s result, or None when ``stop`` was set first."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = call()
        except BaseException as raised:  # noqa: BLE001 - handed to the waiting coroutine
            error = raised
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, outcome, result, error)

    threading.Thread(target=work, name=name, daemon=True).start()
    stopped = asyncio.ensure_future(stop.wait())
    try:
        racing: set[asyncio.Future[Any]] = {outcome, stopped}
        await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        outcome.cancel()  # if still pending, it is abandoned: _settle drops what the call ends with
    return None if outcome.cancelled() else outcome.result()
