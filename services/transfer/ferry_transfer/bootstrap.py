"""Composition root of the transfer service: wires adapters into handlers."""

import asyncio
import functools
from dataclasses import dataclass

from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import CredentialStore
from ferry_shared.service import Bus, ServiceParts
from ferry_shared.settings import ServiceSettings
from ferry_transfer.adapters.cancellation import CancellationRegistry, listen_for_cancellations
from ferry_transfer.adapters.cbt import ChangedBlockTracking
from ferry_transfer.adapters.checkpoints import KvCheckpoints
from ferry_transfer.adapters.disk_source import DatastoreSources, ReadRetries
from ferry_transfer.adapters.sink_factory import SinkFactory, SinkOptions
from ferry_transfer.adapters.source_pool import SourceLimits, SourcePool
from ferry_transfer.adapters.source_sessions import LoginTimeouts, SourceSessions, vsphere_login
from ferry_transfer.handlers import CopyDiskHandler, CopyOptions, CopyRangeHandler, RangeOptions, handler_table
from ferry_transfer.settings import TransferSettings

SERVICE = subjects.TRANSFER
LOGOUT_GRACE = 30.0
"""Seconds the sessions stay open after SIGTERM for copies to finish (or be cancelled by the consumer's drain)."""


@dataclass
class TransferService:
    """The wired service: its bus parts, and the cancellation registry (for tests and status)."""

    parts: ServiceParts
    cancellations: CancellationRegistry
    sinks: SinkFactory


async def bootstrap(
    bus: Bus, settings: ServiceSettings, transfer: TransferSettings | None = None, *, sinks: SinkFactory | None = None
) -> TransferService:
    """Create what the service owns on the bus; wire the CopyDisk and CopyRange handlers and the
    cancellation listener. ``sinks`` replaces the sink factory (tests wrap the real one)."""
    tuning = transfer or TransferSettings()
    replicas = settings.jetstream_replicas
    checkpoints = KvCheckpoints(await ensure_kv(bus.js, subjects.TRANSFER_CHECKPOINTS_BUCKET, replicas=replicas))
    credentials = CredentialStore(await ensure_kv(bus.js, subjects.CREDENTIALS_BUCKET, replicas=replicas))
    sessions = SourceSessions(
        credentials, vsphere_login(LoginTimeouts(connect=tuning.connect_timeout, call=tuning.call_timeout))
    )
    sources = SourcePool(
        DatastoreSources(sessions, ReadRetries(tuning.read_retries, tuning.read_retry_delay)),
        SourceLimits(per_host=tuning.connections_per_host, per_datastore=tuning.connections_per_datastore),
    )
    sinks = sinks or SinkFactory(
        SinkOptions(nbd_in_flight=tuning.nbd_requests_in_flight, connect_timeout=tuning.connect_timeout)
    )
    cancellations = CancellationRegistry(
        max_entries=tuning.cancelled_vms_kept, ttl=tuning.cancelled_vms_seconds, replaying=True
    )
    copy_disk = CopyDiskHandler(
        sources=sources,
        cbt=ChangedBlockTracking(sessions),
        sinks=sinks,
        checkpoints=checkpoints,
        publisher=bus.publisher,
        cancellations=cancellations,
        options=CopyOptions(range_size=tuning.range_size),
    )
    copy_range = CopyRangeHandler(
        sources=sources,
        sinks=sinks,
        checkpoints=checkpoints,
        publisher=bus.publisher,
        cancellations=cancellations,
        options=RangeOptions(chunk_size=tuning.chunk_size, progress_interval=tuning.progress_interval),
    )

    async def close_on_stop(stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.wait({asyncio.ensure_future(cancellations.wait_idle())}, timeout=LOGOUT_GRACE)
        await sources.close_all()
        await sinks.close_all()
        await sessions.close_all()

    parts = ServiceParts(
        handlers=handler_table(copy_disk, copy_range),
        background=[functools.partial(listen_for_cancellations, bus.js, cancellations), close_on_stop],
    )
    return TransferService(parts=parts, cancellations=cancellations, sinks=sinks)
