"""Composition root of the inventory service: wires adapters into handlers."""

import asyncio
import logging
from dataclasses import dataclass

from ferry_inventory.adapters.connections import ConnectionStore
from ferry_inventory.adapters.index_loader import load_index
from ferry_inventory.adapters.kubernetes import KubernetesWatcher
from ferry_inventory.adapters.kv_store import ProviderInventoryStore
from ferry_inventory.adapters.local_target import LocalTargetWatcher
from ferry_inventory.adapters.supervisor import WatcherFactory, WatcherSupervisor
from ferry_inventory.adapters.vsphere import VsphereWatcher, WatchSettings
from ferry_inventory.adapters.vsphere.power import PowerSettings, VspherePower
from ferry_inventory.adapters.vsphere.tickets import TicketSettings, VsphereCloneTickets
from ferry_inventory.domain.index import InventoryIndex
from ferry_inventory.domain.ports import Watcher
from ferry_inventory.handlers import handler_table
from ferry_inventory.settings import InventorySettings
from ferry_inventory.source_session_answers import answer_source_session
from ferry_shared import subjects
from ferry_shared.bus.responder import serve_requests
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credential_stores.choice import open_credential_store
from ferry_shared.credentials import Secret
from ferry_shared.errors import FerryError
from ferry_shared.providers import ProviderSpec
from ferry_shared.readiness import Health, Readiness
from ferry_shared.service import Bus, ServiceParts, Wired
from ferry_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

SERVICE = subjects.INVENTORY


@dataclass(frozen=True)
class InventoryApi:
    """What the HTTP API reads: the in-memory index of every provider's inventory."""

    index: InventoryIndex


def watch_settings(own: InventorySettings) -> WatchSettings:
    """The vSphere watchers' part of the inventory's settings."""
    return WatchSettings(
        batch_size=own.watch_batch_size,
        max_wait_seconds=own.watch_max_wait_seconds,
        connect_timeout=own.connect_timeout,
        call_timeout=own.call_timeout,
        retry_initial=own.retry_initial,
        retry_max=own.retry_max,
        login_retry_min=own.login_retry_min,
        close_timeout=own.close_timeout,
    )


def power_settings(own: InventorySettings) -> PowerSettings:
    """The source-power adapter's part of the inventory's settings."""
    return PowerSettings(
        connect_timeout=own.connect_timeout,
        call_timeout=own.call_timeout,
        task_timeout=own.power_task_timeout,
        max_wait_seconds=own.power_max_wait_seconds,
        close_timeout=own.close_timeout,
        threads=own.power_threads,
    )


def watcher_factory(own: InventorySettings) -> WatcherFactory:
    """Makes the watcher for a provider's type."""
    vsphere = watch_settings(own)
    first, cap = own.retry_initial, own.retry_max

    def make_watcher(spec: ProviderSpec, secret: Secret | None) -> Watcher:
        if spec.type == "vsphere":
            return VsphereWatcher(spec, secret.reveal() if secret else "", vsphere)
        if spec.type == "kubernetes":
            return KubernetesWatcher(spec, secret.reveal() if secret else None, retry_initial=first, retry_max=cap)
        return LocalTargetWatcher(spec, retry_initial=first, retry_max=cap)

    return make_watcher


async def bootstrap(bus: Bus, settings: ServiceSettings, own: InventorySettings) -> Wired[InventoryApi]:
    """Create the buckets, load the stored inventory, reconnect stored providers, and
    power source VMs off and on when asked. Readiness covers the inventory bucket's writes
    (and, through ``run_service``, the commands consumer), not the providers: a provider in
    error is its status, not a broken service."""
    replicas = settings.jetstream_replicas
    kv = await ensure_kv(bus.js, subjects.INVENTORY_BUCKET, replicas=replicas)
    credentials = await open_credential_store(bus.js, settings)
    index = InventoryIndex()
    await load_index(kv, index)
    bucket = Health()
    supervisor = WatcherSupervisor(
        watcher_factory(own),
        lambda name, generation: ProviderInventoryStore(
            name, kv, bus.publisher, index, generation=generation, health=bucket
        ),
        stop_grace=own.watcher_stop_grace,
    )
    connections = ConnectionStore(kv)

    async def keep_providers_connected(stop: asyncio.Event) -> None:
        for connection in await connections.all():
            try:
                secret = await credentials.get(connection.provider.name)
            except FerryError as error:  # unreadable or unreachable: that provider waits, the others connect
                log.error("provider %s not reconnected: %s", connection.provider.name, error)
                continue
            await supervisor.start(connection.provider, secret, connection.generation)
        await stop.wait()
        await supervisor.stop_all()

    power = VspherePower(power_settings(own))

    async def stop_power_operations(stop: asyncio.Event) -> None:
        await stop.wait()
        power.close()  # waits end at once; their commands are nak'd and redelivered

    tickets = VsphereCloneTickets(TicketSettings(connect_timeout=own.connect_timeout, call_timeout=own.call_timeout))

    async def answer_source_sessions(stop: asyncio.Event) -> None:
        async def answer(data: bytes) -> bytes:
            return await answer_source_session(data, connections=connections, credentials=credentials, tickets=tickets)

        try:
            await serve_requests(bus.nc, subjects.SOURCE_SESSION_RPC, subjects.SOURCE_SESSION_QUEUE, answer, stop)
        finally:
            await tickets.close()

    parts = ServiceParts(
        handlers=handler_table(
            watchers=supervisor,
            connections=connections,
            credentials=credentials,
            power=power,
            publisher=bus.publisher,
        ),
        background=[keep_providers_connected, stop_power_operations, answer_source_sessions],
        readiness=Readiness({"inventory bucket": bucket.check}),
    )
    return Wired(parts=parts, api=InventoryApi(index=index))
