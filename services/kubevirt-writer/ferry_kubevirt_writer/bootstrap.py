"""Composition root of the kubevirt-writer service: wires adapters into handlers."""

import asyncio

from ferry_kubevirt_writer.adapters.targets import TargetWriterFactory
from ferry_kubevirt_writer.handlers import handler_table
from ferry_kubevirt_writer.settings import WriterSettings
from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import CredentialStore
from ferry_shared.service import Bus, ServiceParts
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.KUBEVIRT_WRITER


async def bootstrap(bus: Bus, settings: ServiceSettings, writer: WriterSettings | None = None) -> ServiceParts:
    """The writer's handlers over the target providers' writers; ``writer`` settings are
    read from the environment when not given."""
    writer = writer or WriterSettings()
    credentials = CredentialStore(
        await ensure_kv(bus.js, subjects.CREDENTIALS_BUCKET, replicas=settings.jetstream_replicas)
    )
    targets = TargetWriterFactory(
        credentials,
        sink_image=writer.sink_image,
        sink_ready_timeout=writer.sink_ready_timeout,
        request_timeout=writer.request_timeout,
    )

    async def close_clients(stop: asyncio.Event) -> None:
        await stop.wait()
        targets.close()

    return ServiceParts(handlers=handler_table(targets, bus.publisher), background=[close_clients])
