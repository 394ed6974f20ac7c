"""The vSphere provider's :class:`~ferry_inventory.domain.ports.Watcher`.

:class:`VsphereWatcher` connects (TLS probe, login), loads the whole inventory into the
sink (``replace_all``), reports ``ready`` with counts per kind, then follows vCenter's
change feed and sends each batch of changed records (``apply``) until ``stop`` is set.
Failures are reported as ``error`` statuses (reasons in :mod:`.errors`) and retried
with capped exponential back-off; a lost session is logged in again and reloaded.
Created by the inventory service's bootstrap, one per connected vSphere provider.
"""

import asyncio
import logging
from dataclasses import dataclass

from ferry_inventory.adapters.vsphere import blocking
from ferry_inventory.adapters.vsphere.live import LiveInventory
from ferry_inventory.adapters.vsphere.login import log_in
from ferry_inventory.domain.ports import InventorySink, StatusReporter
from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus
from ferry_shared.retry import Backoff, pause
from ferry_shared.vsphere.errors import INVALID_LOGIN, ProviderError, SessionLostError, StoppedError
from ferry_shared.vsphere.session import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchSettings:
    batch_size: int = 500  # objects per RetrievePropertiesEx page
    max_wait_seconds: int = 2  # long-poll of WaitForUpdatesEx; bounds how long stop may wait
    connect_timeout: float = 10.0  # TCP connect and TLS handshake of the probe
    call_timeout: float = 120.0  # any one SOAP call
    retry_initial: float = 1.0
    retry_max: float = 60.0
    login_retry_min: float = 180.0  # a wrong password is retried slowly, so SSO does not lock the user out
    close_timeout: float = 10.0


class VsphereWatcher:
    """Keeps one vCenter's inventory live; see the module docstring."""

    def __init__(self, spec: ProviderSpec, password: str, settings: WatchSettings | None = None) -> None:
        self._spec = spec
        self._password = Secret(password)
        self._settings = settings or WatchSettings()

    def __repr__(self) -> str:
        return f"VsphereWatcher({self._spec.name!r}, url={self._spec.url!r})"

    async def run(self, sink: InventorySink, status: StatusReporter, stop: asyncio.Event) -> None:
        settings = self._settings
        backoff = Backoff(settings.retry_initial, settings.retry_max)
        while not stop.is_set():
            await status.report(ProviderStatus(phase=ProviderPhase.CONNECTING))
            delay = 0.0
            try:
                await self._watch(sink, status, stop, backoff)
            except StoppedError:
                break
            except SessionLostError as lost:
                log.info("vSphere provider %s: %s; logging in again", self._spec.name, lost)
                delay = backoff.next()
            except ProviderError as error:
                log.warning("vSphere provider %s: %s", self._spec.name, error)
                await status.report(error.status())
                delay = backoff.next()
                if error.reason == INVALID_LOGIN:
                    delay = max(delay, settings.login_retry_min)
            await pause(delay, stop=stop)

    async def _watch(self, sink: InventorySink, status: StatusReporter, stop: asyncio.Event, backoff: Backoff) -> None:
        settings = self._settings
        session = await blocking.call(stop, self._open, discard=Session.close)
        live = LiveInventory(session, batch_size=settings.batch_size, max_wait_seconds=settings.max_wait_seconds)
        try:
            records = await blocking.call(stop, lambda: live.load(stop.is_set))
            await sink.replace_all(records)
            counts = live.mirror.counts()
            await status.report(ProviderStatus(phase=ProviderPhase.READY, counts=counts))
            log.info("vSphere provider %s loaded: %s", self._spec.name, counts)
            backoff.reset()
            await blocking.call(stop, live.follow)
            while True:
                changes = await blocking.call(stop, lambda: live.next_changes(stop.is_set), interrupt=live.cancel)
                if changes:
                    await sink.apply(changes.put, changes.deleted)
                if (now := live.mirror.counts()) != counts:
                    counts = now
                    await status.report(ProviderStatus(phase=ProviderPhase.READY, counts=counts))
        finally:
            closing = asyncio.ensure_future(asyncio.to_thread(live.close))
            await asyncio.wait({closing}, timeout=settings.close_timeout)

    def _open(self) -> Session:
        """Probe TLS and log in (blocking)."""
        settings = self._settings
        return log_in(
            self._spec, self._password, connect_timeout=settings.connect_timeout, call_timeout=settings.call_timeout
        )
