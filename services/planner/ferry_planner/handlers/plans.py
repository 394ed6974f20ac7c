"""Use cases of plans: create, show with their validation, delete, and announcing every
change of a plan's validation result (``PlanValidated`` and the event stream)."""

import logging
from collections.abc import Iterable

import msgspec

from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.new_migration import completed_before
from ferry_planner.domain.plan_validation import PlanContext, validate_plan
from ferry_planner.domain.plans import Plan
from ferry_planner.domain.providers import ProviderRecord
from ferry_planner.domain.views import PlanView
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import AlreadyExistsError, check_name
from ferry_planner.handlers.lookups import is_ready, require, require_stored, target_view
from ferry_planner.handlers.providers import changed
from ferry_shared.ids import digest, message_id
from ferry_shared.plans import PlanStatus, PlanValidated

log = logging.getLogger(__name__)


async def create_plan(ports: PlannerPorts, plan: Plan) -> PlanView:
    check_name("plan", plan.name)
    if await ports.resources.create(Plan, plan.name, plan) is None:
        raise AlreadyExistsError("plan", plan.name)
    changed(ports, "plan", plan.name)
    return await plan_view(ports, plan.name)


async def delete_plan(ports: PlannerPorts, name: str) -> None:
    await require_stored(ports, Plan, "plan", name)
    await ports.resources.delete(Plan, name)
    ports.announced.statuses.pop(name, None)
    changed(ports, "plan", name)


async def plan_view(ports: PlannerPorts, name: str) -> PlanView:
    found = await require(ports, Plan, "plan", name)
    return PlanView(plan=found, status=await validate(ports, found))


async def plans(ports: PlannerPorts) -> list[PlanView]:
    return [PlanView(plan=p, status=await validate(ports, p)) for p in await ports.resources.list(Plan)]


def migrated_vms(ports: PlannerPorts, plan: str) -> dict[str, str]:
    """VM id → the migration of ``plan`` that completed it."""
    return completed_before([m for m in ports.migrations.all() if m.plan == plan])


async def validate(ports: PlannerPorts, plan: Plan) -> PlanStatus:
    source = await ports.resources.get(ProviderRecord, plan.source_provider)
    target = await ports.resources.get(ProviderRecord, plan.target_provider)
    ctx = PlanContext(
        source=ports.inventory.source_view(plan.source_provider) if source else None,
        target=await target_view(ports, plan.target_provider) if target else None,
        network_map=await ports.resources.get(NetworkMap, plan.network_map),
        storage_map=await ports.resources.get(StorageMap, plan.storage_map),
        source_ready=is_ready(ports, source),
        target_ready=is_ready(ports, target),
        migrated=migrated_vms(ports, plan.name),
    )
    return validate_plan(plan, ctx)


async def revalidate_plans(ports: PlannerPorts, inventories: Iterable[str] = ()) -> None:
    """Announce the providers whose inventory changed; validate every plan and announce
    each result that changed since it was last announced."""
    for provider in sorted(inventories):
        ports.changes.publish({"kind": "inventory", "name": provider})
    for plan in await ports.resources.list(Plan):
        try:
            await _announce_validation(ports, plan)
        except Exception:
            # One plan that cannot be validated must not stop the others' announcements.
            log.exception("revalidating plan %s failed; going on with the other plans", plan.name)


async def _announce_validation(ports: PlannerPorts, plan: Plan) -> None:
    """Publish the plan's result if it changed; it counts as announced once published."""
    status = await validate(ports, plan)
    if ports.announced.statuses.get(plan.name) == status:
        return
    ports.changes.publish(
        {"kind": "plan_status", "name": plan.name, "ready": status.ready, "status": msgspec.to_builtins(status)}
    )
    message_id = _announcement_id(ports, plan.name, status)
    if ports.leadership.is_leader():  # every replica tells its own SSE clients; one tells the bus
        await ports.publisher.publish(PlanValidated(message_id=message_id, plan_name=plan.name, status=status))
    ports.announced.statuses[plan.name] = status
    ports.announced.ids[plan.name] = message_id


def _announcement_id(ports: PlannerPorts, plan: str, status: PlanStatus) -> str:
    """Derived from the result and the plan's previous announcement: a retried publish is
    deduplicated, while a result that comes back after another is announced again."""
    previous = ports.announced.ids.get(plan, "")
    return message_id("plan_validated", plan, digest(previous.encode(), msgspec.json.encode(status)))
