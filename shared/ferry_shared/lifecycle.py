"""Graceful shutdown: SIGTERM or SIGINT sets a stop event; the service then drains."""

import asyncio
import signal


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
