"""Composition root of the planner service: wires adapters into its use cases."""

import asyncio
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.adapters.inventory_mirror import InventoryMirror
from ferry_planner.adapters.migration_store import MigrationStore
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.handlers.migrations import DEFAULT_MAX_VMS_PER_HOST, Migrations
from ferry_planner.handlers.planning import Planner
from ferry_shared import subjects
from ferry_shared.bus.consumer import ensure_durable
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import CredentialStore
from ferry_shared.service import Bus, ServiceParts, event_consumer_spec
from ferry_shared.settings import ServiceSettings

SERVICE = subjects.PLANNER


class PlannerSettings(BaseSettings):
    """The planner's own settings (``FERRY_PLANNER_*``)."""

    model_config = SettingsConfigDict(env_prefix="FERRY_PLANNER_", extra="ignore")

    max_vms_per_host: Annotated[int, Field(ge=1, description="VMs migrated at once per source ESXi host")] = (
        DEFAULT_MAX_VMS_PER_HOST
    )


@dataclass
class PlannerService:
    """The wired service: its bus parts, and the use cases its HTTP API calls."""

    parts: ServiceParts
    planner: Planner
    migrations: Migrations


async def bootstrap(
    bus: Bus, settings: ServiceSettings, planner_settings: PlannerSettings | None = None
) -> PlannerService:
    """Create the buckets and the use cases; load the migrations; follow the inventory
    and the migration events; serve the API."""
    own_settings = planner_settings or PlannerSettings()
    replicas = settings.jetstream_replicas
    own = await ensure_kv(bus.js, subjects.PLANNER_BUCKET, replicas=replicas)
    inventory = await ensure_kv(bus.js, subjects.INVENTORY_BUCKET, replicas=replicas)
    credentials = CredentialStore(await ensure_kv(bus.js, subjects.CREDENTIALS_BUCKET, replicas=replicas))
    mirror = InventoryMirror(inventory)
    repository = PlannerRepository(own)
    broadcaster = Broadcaster()
    planner = Planner(repository, mirror, credentials, bus.publisher, broadcaster)
    store = MigrationStore(own)
    await store.load()
    migrations = Migrations(
        store,
        repository,
        mirror,
        planner,
        bus.publisher,
        broadcaster,
        max_vms_per_host=own_settings.max_vms_per_host,
    )

    await _ensure_event_consumer(bus, settings, migrations)

    async def revalidate(stop: asyncio.Event) -> None:
        await mirror.loaded.wait()
        await planner.revalidate_forever(stop)

    parts = ServiceParts(
        handlers={},
        event_handlers=migrations.event_handlers(),
        background=[mirror.run, revalidate, migrations.run],
    )
    return PlannerService(parts=parts, planner=planner, migrations=migrations)


async def _ensure_event_consumer(bus: Bus, settings: ServiceSettings, migrations: Migrations) -> None:
    """Create the durable event consumer now, before the API can start a migration: a new
    durable starts at the next event, so one created later would miss the first answers."""
    await ensure_durable(bus.js, event_consumer_spec(SERVICE, migrations.event_handlers(), settings))
