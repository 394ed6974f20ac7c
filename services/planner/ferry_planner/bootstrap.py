"""Composition root of the planner service: wires adapters into the ports its use cases take."""

import asyncio
import contextlib
from dataclasses import dataclass

from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.adapters.inventory_mirror import InventoryMirror
from ferry_planner.adapters.migration_store import MigrationStore
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.adapters.revalidation import DebouncedRevalidation
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.events import event_handlers
from ferry_planner.handlers.plans import revalidate_plans
from ferry_planner.handlers.resume import resume, store_progress
from ferry_planner.settings import PlannerSettings
from ferry_shared import subjects
from ferry_shared.bus.consumer import ensure_durable
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import CredentialStore
from ferry_shared.messages import utc_now
from ferry_shared.service import Bus, ServiceParts, Wired, event_consumer_spec
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.PLANNER


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
    credentials = CredentialStore(await ensure_kv(bus.js, subjects.CREDENTIALS_BUCKET, replicas=replicas))
    migrations = MigrationStore(planner_kv)
    await migrations.load()
    broadcaster = Broadcaster()
    revalidation = DebouncedRevalidation()
    mirror.listeners.append(revalidation.request)
    ports = PlannerPorts(
        resources=PlannerRepository(planner_kv),
        credentials=credentials,
        inventory=mirror,
        migrations=migrations,
        publisher=bus.publisher,
        changes=broadcaster,
        revalidation=revalidation,
        clock=utc_now,
        max_vms_per_host=own.max_vms_per_host,
    )
    handlers = event_handlers(ports)
    # A new durable starts at the next event: create it before the API can start a
    # migration, or the first answers would be missed.
    await ensure_durable(bus.js, event_consumer_spec(SERVICE, handlers, settings))

    async def revalidate(stop: asyncio.Event) -> None:
        await mirror.loaded.wait()
        await revalidation.run(lambda inventories: revalidate_plans(ports, inventories), stop)

    async def carry_on(stop: asyncio.Event) -> None:
        await resume(ports)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), own.progress_save_interval)
            await store_progress(ports)

    parts = ServiceParts(handlers={}, event_handlers=handlers, background=[mirror.run, revalidate, carry_on])
    parts.readiness.add("inventory mirror", mirror.health.check)
    return Wired(parts=parts, api=PlannerApi(ports=ports, events=broadcaster))
