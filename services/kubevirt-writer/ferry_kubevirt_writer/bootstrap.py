"""Composition root of the kubevirt-writer service: wires adapters into handlers.

Called by :mod:`.entrypoints.main` (with settings it read from the environment) and by
the integration tests (with their own); reads no settings itself.
"""

import asyncio
from dataclasses import dataclass

from ferry_kubevirt_writer.adapters.sink_certificates import SinkCertificates
from ferry_kubevirt_writer.adapters.targets import TargetWriterFactory
from ferry_kubevirt_writer.domain.ports import TargetWriters
from ferry_kubevirt_writer.handlers import handler_table
from ferry_kubevirt_writer.settings import WriterSettings
from ferry_shared import subjects
from ferry_shared.credential_stores.choice import open_credential_store
from ferry_shared.service import Bus, ServiceParts, Wired
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.KUBEVIRT_WRITER


@dataclass(frozen=True)
class WriterApi:
    """What the writer's callers can reach: the writers of the target providers (it
    serves no routes of its own)."""

    targets: TargetWriters


async def bootstrap(bus: Bus, settings: ServiceSettings, own: WriterSettings) -> Wired[WriterApi]:
    """The writer's handlers over the target providers' writers."""
    credentials = await open_credential_store(bus.js, settings)
    targets = TargetWriterFactory(
        credentials,
        sink_image=own.sink_image,
        sink_ready_timeout=own.sink_ready_timeout,
        request_timeout=own.request_timeout,
        certificates=SinkCertificates.load(own.nbd_ca_dir) if own.nbd_ca_dir else None,
        transfer_namespace=own.transfer_namespace,
        local_roots=own.local_roots(),
    )

    async def close_clients(stop: asyncio.Event) -> None:
        await stop.wait()
        targets.close()

    parts = ServiceParts(handlers=handler_table(targets, bus.publisher), background=[close_clients])
    return Wired(parts=parts, api=WriterApi(targets=targets))
