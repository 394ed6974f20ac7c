"""Starting a migration of a Ready plan: build every VM's entry once, store it, grant slots."""

import logging

from ferry_planner.domain.blueprint import BlueprintError
from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.migration_views import MigrationView
from ferry_planner.domain.migrations import MigrationPhase
from ferry_planner.domain.new_migration import MigrationInputs, new_migration, next_name
from ferry_planner.domain.outbox import MIGRATION_ITSELF, Outbox, finished_event
from ferry_planner.domain.plans import Plan
from ferry_planner.domain.providers import ProviderRecord
from ferry_planner.handlers.commit import announce_migration, send_outboxes
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import AlreadyExistsError, ConflictError, InvalidError
from ferry_planner.handlers.migration_queries import migration
from ferry_planner.handlers.plans import plan_view
from ferry_planner.handlers.slots import grant_slots
from ferry_shared.dns1123 import is_dns1123_label
from ferry_shared.errors import TemporaryError
from ferry_shared.plans import Category, PlanStatus

log = logging.getLogger(__name__)


async def start_migration(ports: PlannerPorts, plan_name: str, name: str = "") -> MigrationView:
    """Start a migration of a Ready plan (409 when not Ready or one is running)."""
    view = await plan_view(ports, plan_name)
    if not view.status.ready:
        raise ConflictError("plan_not_ready", f"plan '{plan_name}' is not ready: {_not_ready_reasons(view.status)}")
    if name and not is_dns1123_label(name):
        raise InvalidError(f"migration name '{name}' must be a DNS-1123 label (lower-case letters, digits, '-')")
    async with ports.guards.creation:
        runs = [m for m in ports.migrations.all() if m.plan == plan_name]
        running = sorted(m.name for m in runs if m.phase is MigrationPhase.RUNNING)
        if running:
            raise ConflictError(
                "already_running",
                f"migration '{running[0]}' of plan '{plan_name}' is still running; wait for it to finish or cancel it",
            )
        name = name or next_name(plan_name, [m.name for m in ports.migrations.all()], len(runs))
        inputs = await _inputs(ports, view.plan, view.status)
        try:
            created = new_migration(name, inputs, runs, ports.clock())
        except BlueprintError as error:
            raise ConflictError("plan_not_ready", f"plan '{plan_name}' is not ready: {error}") from error
        finished = (finished_event(created),) if created.completed_at is not None else ()
        async with ports.guards.migration[name]:
            if not await ports.migrations.create(
                created, Outbox(migration=name, vm_id=MIGRATION_ITSELF, messages=finished)
            ):
                raise AlreadyExistsError("migration", name)
            log.info("migration %s of plan %s created with %d VMs", name, plan_name, len(created.vms))
            announce_migration(ports, created)
            await send_outboxes(ports, name)
    try:
        await grant_slots(ports)
    except TemporaryError as error:  # the migration exists: the replica running the migrations grants them
        log.info("slots for migration %s not granted here: %s", name, error)
    return migration(ports, name)


async def _inputs(ports: PlannerPorts, plan: Plan, status: PlanStatus) -> MigrationInputs:
    network_map = await ports.resources.get(NetworkMap, plan.network_map)
    storage_map = await ports.resources.get(StorageMap, plan.storage_map)
    source = await ports.resources.get(ProviderRecord, plan.source_provider)
    target = await ports.resources.get(ProviderRecord, plan.target_provider)
    if network_map is None or storage_map is None or source is None or target is None:
        raise ConflictError("plan_not_ready", f"plan '{plan.name}' refers to a map or provider that is gone")
    return MigrationInputs(
        plan=plan,
        status=status,
        source=ports.inventory.source_view(plan.source_provider),
        network_map=network_map,
        storage_map=storage_map,
        source_provider=source.spec,
        target_provider=target.spec,
    )


def _not_ready_reasons(status: PlanStatus) -> str:
    reasons = [c.message for c in status.conditions if c.category is Category.CRITICAL]
    for vm in status.vms:
        reasons += [f"{vm.name or vm.ref}: {c.assessment}" for c in vm.concerns if c.category is Category.CRITICAL]
    return "; ".join(reasons) or "it has not been validated yet"
