"""Composition root of the planner service: wires adapters into its use cases."""

import asyncio
from dataclasses import dataclass

from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.adapters.inventory_mirror import InventoryMirror
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.handlers import Planner
from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import CredentialStore
from ferry_shared.service import Bus, ServiceParts
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.PLANNER


@dataclass
class PlannerService:
    """The wired service: its bus parts, and the planner its HTTP API calls."""

    parts: ServiceParts
    planner: Planner


async def bootstrap(bus: Bus, settings: ServiceSettings) -> PlannerService:
    """Create the buckets and the planner; follow the inventory; serve the API."""
    replicas = settings.jetstream_replicas
    own = await ensure_kv(bus.js, subjects.PLANNER_BUCKET, replicas=replicas)
    inventory = await ensure_kv(bus.js, subjects.INVENTORY_BUCKET, replicas=replicas)
    credentials = CredentialStore(await ensure_kv(bus.js, subjects.CREDENTIALS_BUCKET, replicas=replicas))
    mirror = InventoryMirror(inventory)
    planner = Planner(PlannerRepository(own), mirror, credentials, bus.publisher, Broadcaster())

    async def revalidate(stop: asyncio.Event) -> None:
        await mirror.loaded.wait()
        await planner.revalidate_forever(stop)

    return PlannerService(parts=ServiceParts(handlers={}, background=[mirror.run, revalidate]), planner=planner)
