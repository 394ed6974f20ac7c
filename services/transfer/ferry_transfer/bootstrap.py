"""Composition root of the transfer service: wires adapters into handlers."""

import asyncio
import functools
import time
from dataclasses import dataclass

from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.service import Bus, ServiceParts, Wired
from ferry_shared.settings import ServiceSettings
from ferry_transfer.adapters.cancel_feed import FeedOptions, follow_cancellations
from ferry_transfer.adapters.cancellation import CancellationRegistry
from ferry_transfer.adapters.cbt import ChangedBlockTracking
from ferry_transfer.adapters.checkpoints import KvCheckpoints
from ferry_transfer.adapters.chunk_buffers import ChunkBuffers
from ferry_transfer.adapters.disk_source import DatastoreSources, ReadRetries
from ferry_transfer.adapters.nbd import directory_context
from ferry_transfer.adapters.range_copy import copy_range
from ferry_transfer.adapters.sink_factory import SinkFactory, SinkOptions
from ferry_transfer.adapters.source_pool import SourceLimits, SourcePool
from ferry_transfer.adapters.source_sessions import LoginTimeouts, SourceSessions, vsphere_clone_login
from ferry_transfer.adapters.source_tickets import InventoryTickets
from ferry_transfer.domain.ports import CopyPorts
from ferry_transfer.handlers import CopyOptions, RangeOptions, handler_table
from ferry_transfer.settings import TransferSettings

SERVICE = subjects.TRANSFER
LOGOUT_GRACE = 30.0
"""Seconds the sessions stay open after SIGTERM for copies to finish (or be cancelled by the consumer's drain)."""


@dataclass(frozen=True)
class TransferApi:
    """What tests (and status) reach of the wired service: the cancellation registry and the sink factory."""

    cancellations: CancellationRegistry
    sinks: SinkFactory


async def bootstrap(
    bus: Bus, settings: ServiceSettings, transfer: TransferSettings, *, sinks: SinkFactory | None = None
) -> Wired[TransferApi]:
    """Create what the service owns on the bus; wire the CopyDisk and CopyRange handlers and the
    cancellation listener. ``sinks`` replaces the sink factory (tests wrap the real one)."""
    replicas = settings.jetstream_replicas
    checkpoints = KvCheckpoints(await ensure_kv(bus.js, subjects.TRANSFER_CHECKPOINTS_BUCKET, replicas=replicas))
    sessions = SourceSessions(
        InventoryTickets(bus.nc, timeout=transfer.connect_timeout + transfer.call_timeout),
        vsphere_clone_login(LoginTimeouts(connect=transfer.connect_timeout, call=transfer.call_timeout)),
    )
    datastores = DatastoreSources(sessions, ReadRetries(transfer.read_retries, transfer.read_retry_delay))
    sources = SourcePool(
        datastores,
        SourceLimits(per_host=transfer.connections_per_host, per_datastore=transfer.connections_per_datastore),
    )
    sinks = sinks or SinkFactory(
        SinkOptions(
            nbd_in_flight=transfer.nbd_requests_in_flight,
            connect_timeout=transfer.connect_timeout,
            tls=directory_context(transfer.nbd_tls_dir) if transfer.nbd_tls_dir else None,
            sync_batch=transfer.sync_ranges,
            sync_wait=transfer.sync_wait,
        )
    )
    cancellations = CancellationRegistry(
        max_entries=transfer.cancelled_vms_kept, ttl=transfer.cancelled_vms_seconds, replaying=True
    )
    ports = CopyPorts(
        sources=sources,
        sinks=sinks,
        checkpoints=checkpoints,
        publisher=bus.publisher,
        cancellations=cancellations,
        clock=time.time,
    )
    handlers = handler_table(
        ports,
        cbt=ChangedBlockTracking(sessions),
        copier=functools.partial(copy_range, buffers=ChunkBuffers(keep=2 * transfer.ranges_in_flight)),
        disk=CopyOptions(range_size=transfer.range_size),
        ranges=RangeOptions(chunk_size=transfer.chunk_size, progress_interval=transfer.progress_interval),
    )

    async def close_on_stop(stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.wait({asyncio.ensure_future(cancellations.wait_idle())}, timeout=LOGOUT_GRACE)
        await sources.close_all()
        datastores.close()
        await sinks.close_all()
        await sessions.close_all()

    feed = FeedOptions(since=transfer.cancelled_vms_seconds)
    parts = ServiceParts(
        handlers=handlers,
        background=[functools.partial(follow_cancellations, bus.js, cancellations, options=feed), close_on_stop],
    )
    return Wired(parts=parts, api=TransferApi(cancellations=cancellations, sinks=sinks))
