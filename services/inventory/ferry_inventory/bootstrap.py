"""Composition root of the inventory service: wires adapters into handlers."""

from ferry_inventory.handlers import HANDLERS
from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.service import Bus, ServiceParts
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.INVENTORY


async def bootstrap(bus: Bus, settings: ServiceSettings) -> ServiceParts:
    """Create what the service owns on the bus and return its handlers and routes."""
    await ensure_kv(bus.js, subjects.INVENTORY_BUCKET, replicas=settings.jetstream_replicas)
    return ServiceParts(handlers=HANDLERS)
