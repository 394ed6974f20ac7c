"""Composition root of the planner service: wires adapters into the ports its use cases take."""

import asyncio
import logging
from dataclasses import dataclass

from nats.errors import Error as NatsError

from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.adapters.bucket_copy import BucketCopy
from ferry_planner.adapters.inventory_mirror import InventoryMirror
from ferry_planner.adapters.lease import KvLease
from ferry_planner.adapters.migration_store import PREFIX as MIGRATION_PREFIX
from ferry_planner.adapters.migration_store import MigrationStore
from ferry_planner.adapters.repository import PREFIXES as RESOURCE_PREFIXES
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.adapters.revalidation import DebouncedRevalidation
from ferry_planner.handlers.background import run_active
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.events import event_handlers
from ferry_planner.handlers.plans import revalidate_plans
from ferry_planner.handlers.replicas import take_change_from_elsewhere
from ferry_planner.settings import PlannerSettings
from ferry_shared import subjects
from ferry_shared.bus.consumer import DurableConsumer, ensure_durable
from ferry_shared.bus.kv_watch import follow_entries
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credential_stores.choice import open_credential_store
from ferry_shared.messages import utc_now
from ferry_shared.service import Bus, ServiceParts, Wired, event_consumer_spec
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.PLANNER

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannerApi:
    """What the HTTP API reaches: the use cases' ports, and the event stream to subscribe to."""

    ports: PlannerPorts
    events: Broadcaster


async def bootstrap(bus: Bus, settings: ServiceSettings, own: PlannerSettings) -> Wired[PlannerApi]:
    """Create the buckets and the ports; load the migrations; follow the inventory and the
    migration events; carry on where a previous run stopped."""
    replicas = settings.jetstream_replicas
    planner_kv = await ensure_kv(bus.js, subjects.PLANNER_BUCKET, replicas=replicas)
    mirror = InventoryMirror(await ensure_kv(bus.js, subjects.INVENTORY_BUCKET, replicas=replicas))
    credentials = await open_credential_store(bus.js, settings, rotate=True)
    migrations = MigrationStore(planner_kv)
    await migrations.load()
    broadcaster = Broadcaster()
    lease = KvLease(planner_kv, own.replica_name, ttl=own.lease_ttl, renew_every=own.lease_renew_every)
    revalidation = DebouncedRevalidation()
    mirror.listeners.append(revalidation.request)
    copy = BucketCopy(frozenset(RESOURCE_PREFIXES.values()))
    ports = PlannerPorts(
        resources=PlannerRepository(planner_kv, copy),
        credentials=credentials,
        inventory=mirror,
        migrations=migrations,
        publisher=bus.publisher,
        changes=broadcaster,
        revalidation=revalidation,
        clock=utc_now,
        max_vms_per_host=own.max_vms_per_host,
        step_deadline=own.step_deadline,
        leadership=lease,
        local_target_roots=own.local_roots(),
    )
    handlers = event_handlers(ports)
    events_spec = event_consumer_spec(SERVICE, handlers, settings)
    # A new durable starts at the next event: create it before the API can start a
    # migration, or the first answers would be missed.
    await ensure_durable(bus.js, events_spec)
    consumer = DurableConsumer(bus.js, bus.publisher, events_spec, handlers)

    async def revalidate(stop: asyncio.Event) -> None:
        await mirror.loaded.wait()
        await revalidation.run(lambda inventories: revalidate_plans(ports, inventories), stop)

    async def on_entry(key: str, revision: int, value: bytes | None) -> None:
        if key.startswith(f"{MIGRATION_PREFIX}.") and value is not None:
            name = key.split(".")[1]
            try:
                await take_change_from_elsewhere(ports, name, lambda: migrations.adopt(key, revision, value))
            except (NatsError, TimeoutError, ConnectionError) as error:
                # The key is taken; granting slots after it failed on the bus (the follow goes on).
                log.warning("after taking %s from another replica: %s", key, error)
        elif copy.holds(key):
            copy.apply(key, revision, value)
            revalidation.request()  # a provider, map or plan changed, perhaps through another replica

    async def run_migrations_while_leader(stop: asyncio.Event) -> None:
        await lease.hold(stop, lambda ending: run_active(ports, consumer.run, own.progress_save_interval, ending))

    async def follow_other_replicas(stop: asyncio.Event) -> None:
        await follow_entries(planner_kv, on_entry, stop, initial_done=copy.loaded, health=copy.health)

    parts = ServiceParts(
        handlers={}, background=[mirror.run, revalidate, follow_other_replicas, run_migrations_while_leader]
    )
    parts.readiness.add("inventory mirror", mirror.health.check)
    parts.readiness.add("planner bucket", copy.health.check)
    # A standby does not consume the events (it serves the API): only the active replica's consumer counts.
    parts.readiness.add(events_spec.durable, lambda: consumer.health.check() if lease.is_leader() else None)
    return Wired(parts=parts, api=PlannerApi(ports=ports, events=broadcaster))
