"""Runs one watcher task per connected provider and restarts it when settings change."""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ferry_inventory.adapters.kv_store import ProviderInventoryStore
from ferry_inventory.domain.ports import Watcher
from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus

log = logging.getLogger(__name__)

WatcherFactory = Callable[[ProviderSpec, Secret | None], Watcher]
StoreFactory = Callable[[str, int], ProviderInventoryStore]


@dataclass
class _Running:
    generation: int
    stop: asyncio.Event
    task: asyncio.Task[None]


class WatcherSupervisor:
    """Starts, replaces and stops provider watchers."""

    def __init__(self, make_watcher: WatcherFactory, make_store: StoreFactory, *, stop_grace: float = 15.0) -> None:
        """``stop_grace``: seconds a stopped watcher may take to end before it is cancelled."""
        self._make_watcher = make_watcher
        self._make_store = make_store
        self._stop_grace = stop_grace
        self._running: dict[str, _Running] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, provider: str) -> asyncio.Lock:
        """Serializes commands about one provider (a delete then a re-add must not interleave)."""
        return self._locks.setdefault(provider, asyncio.Lock())

    def generation(self, provider: str) -> int | None:
        running = self._running.get(provider)
        return running.generation if running else None

    async def start(self, spec: ProviderSpec, secret: Secret | None, generation: int) -> None:
        """Run a watcher for ``spec`` (replacing an older generation's)."""
        await self.stop(spec.name)
        store = self._make_store(spec.name, generation)
        await store.report(ProviderStatus(phase=ProviderPhase.CONNECTING))
        watcher = self._make_watcher(spec, secret)
        stop = asyncio.Event()

        async def run() -> None:
            try:
                await watcher.run(store, store, stop)
            except Exception as error:
                log.exception("watcher of provider %s crashed", spec.name)
                await store.report(
                    ProviderStatus(
                        phase=ProviderPhase.ERROR,
                        reason="internal_error",
                        message=f"the inventory watcher stopped unexpectedly ({type(error).__name__}); "
                        "reconnect the provider or see the inventory service's logs",
                    )
                )

        task = asyncio.create_task(run(), name=f"watch {spec.name}")
        self._running[spec.name] = _Running(generation=generation, stop=stop, task=task)

    async def stop(self, provider: str) -> None:
        running = self._running.pop(provider, None)
        if running is None:
            return
        grace = self._stop_grace
        running.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(running.task), grace)
        except TimeoutError:
            log.warning("watcher of %s did not stop within %.0fs; cancelling it", provider, grace)
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task

    async def forget(self, provider: str) -> None:
        await self.stop(provider)
        await self._make_store(provider, 0).forget()

    async def stop_all(self) -> None:
        for provider in list(self._running):
            await self.stop(provider)
