"""Composition root of the transfer service: wires adapters into handlers."""

from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.service import Bus, ServiceParts
from ferry_shared.settings import ServiceSettings
from ferry_transfer.handlers import HANDLERS

SERVICE = subjects.TRANSFER


async def bootstrap(bus: Bus, settings: ServiceSettings) -> ServiceParts:
    """Create what the service owns on the bus and return its handlers and routes."""
    await ensure_kv(bus.js, subjects.TRANSFER_CHECKPOINTS_BUCKET, replicas=settings.jetstream_replicas)
    return ServiceParts(handlers=HANDLERS)
