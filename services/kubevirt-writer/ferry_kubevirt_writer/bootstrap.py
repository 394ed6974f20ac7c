"""Composition root of the kubevirt-writer service: wires adapters into handlers."""

from ferry_kubevirt_writer.handlers import HANDLERS
from ferry_shared import subjects
from ferry_shared.service import Bus, ServiceParts
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.KUBEVIRT_WRITER


async def bootstrap(bus: Bus, settings: ServiceSettings) -> ServiceParts:
    """Create what the service owns on the bus and return its handlers and routes."""
    return ServiceParts(handlers=HANDLERS)
