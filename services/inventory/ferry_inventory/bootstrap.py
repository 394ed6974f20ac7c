"""Composition root of the inventory service: wires adapters into handlers."""

import asyncio
from dataclasses import dataclass

from ferry_inventory.adapters.connections import ConnectionStore
from ferry_inventory.adapters.index_loader import load_index
from ferry_inventory.adapters.kubernetes import KubernetesWatcher
from ferry_inventory.adapters.kv_store import ProviderInventoryStore
from ferry_inventory.adapters.local_target import LocalTargetWatcher
from ferry_inventory.adapters.supervisor import WatcherSupervisor
from ferry_inventory.adapters.vsphere import VsphereWatcher
from ferry_inventory.adapters.vsphere.power import VspherePower
from ferry_inventory.domain.index import InventoryIndex
from ferry_inventory.domain.ports import Watcher
from ferry_inventory.handlers import handler_table
from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import CredentialStore, Secret
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus, ServiceParts
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.INVENTORY


def make_watcher(spec: ProviderSpec, secret: Secret | None) -> Watcher:
    """The watcher for a provider's type."""
    if spec.type == "vsphere":
        return VsphereWatcher(spec, secret.reveal() if secret else "")
    if spec.type == "kubernetes":
        return KubernetesWatcher(spec, secret.reveal() if secret else None)
    return LocalTargetWatcher(spec)


@dataclass
class Inventory:
    """The wired service: its bus parts, and the index its HTTP API reads."""

    parts: ServiceParts
    index: InventoryIndex


async def bootstrap(bus: Bus, settings: ServiceSettings) -> Inventory:
    """Create the buckets, load the stored inventory, reconnect stored providers, and
    power source VMs off and on when asked."""
    replicas = settings.jetstream_replicas
    kv = await ensure_kv(bus.js, subjects.INVENTORY_BUCKET, replicas=replicas)
    credentials = CredentialStore(await ensure_kv(bus.js, subjects.CREDENTIALS_BUCKET, replicas=replicas))
    index = InventoryIndex()
    await load_index(kv, index)
    supervisor = WatcherSupervisor(
        make_watcher,
        lambda name, generation: ProviderInventoryStore(name, kv, bus.publisher, index, generation=generation),
    )
    connections = ConnectionStore(kv)

    async def keep_providers_connected(stop: asyncio.Event) -> None:
        for connection in await connections.all():
            secret = await credentials.get(connection.provider.name)
            await supervisor.start(connection.provider, secret, connection.generation)
        await stop.wait()
        await supervisor.stop_all()

    power = VspherePower()

    async def stop_power_operations(stop: asyncio.Event) -> None:
        await stop.wait()
        power.close()  # waits end at once; their commands are nak'd and redelivered

    parts = ServiceParts(
        handlers=handler_table(supervisor, connections, credentials, power, bus.publisher),
        background=[keep_providers_connected, stop_power_operations],
    )
    return Inventory(parts=parts, index=index)
