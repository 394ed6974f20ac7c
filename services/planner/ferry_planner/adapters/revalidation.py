"""Debounced revalidation: changes arrive in bursts (an inventory load writes thousands of
records), so requests are gathered and every plan is validated once per burst."""

import asyncio
from collections.abc import Awaitable, Callable

DEBOUNCE_SECONDS = 0.05

Revalidate = Callable[[set[str]], Awaitable[None]]
"""Called with the providers whose inventory changed since the last call."""


class DebouncedRevalidation:
    """Implements the ``Revalidation`` port; :meth:`run` calls ``revalidate`` after each burst."""

    def __init__(self, debounce: float = DEBOUNCE_SECONDS) -> None:
        self._debounce = debounce
        self._dirty = asyncio.Event()
        self._inventories: set[str] = set()

    def request(self, inventory_of: str | None = None) -> None:
        if inventory_of is not None:
            self._inventories.add(inventory_of)
        self._dirty.set()

    async def run(self, revalidate: Revalidate, stop: asyncio.Event) -> None:
        """Until ``stop``: wait for a request, let the burst settle, revalidate."""
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                dirty = asyncio.create_task(self._dirty.wait())
                await asyncio.wait({dirty, stopping}, return_when=asyncio.FIRST_COMPLETED)
                dirty.cancel()
                if stop.is_set():
                    break
                await asyncio.sleep(self._debounce)
                self._dirty.clear()
                inventories, self._inventories = self._inventories, set()
                await revalidate(inventories)
        finally:
            stopping.cancel()
