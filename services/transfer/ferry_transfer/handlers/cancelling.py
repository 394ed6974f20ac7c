"""Running a copy so that its VM's cancel signal stops it (the signal comes from the
:class:`~ferry_transfer.domain.ports.Cancellations` port's ``track``)."""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


async def run_unless_cancelled(work: Coroutine[Any, Any, T], cancelled: asyncio.Event) -> tuple[bool, T | None]:
    """Run ``work`` until it ends or ``cancelled`` is set: ``(True, None)`` if cancelled, else ``(False, result)``.

    The work's own exceptions propagate; when the caller itself is cancelled, the work is
    cancelled and awaited before the cancellation goes on.
    """
    task = asyncio.ensure_future(work)
    signal = asyncio.ensure_future(cancelled.wait())
    try:
        await asyncio.wait({task, signal}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        signal.cancel()
        interrupted = not task.done()
        task.cancel()  # no-op when it finished
        await asyncio.wait({task, signal})
    if interrupted:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.info("a cancelled copy ended with %s: %s", type(error).__name__, error)
        return True, None
    return False, task.result()
