"""Use cases of plans: create, show with their validation, delete, and announcing every
change of a plan's validation result (``PlanValidated`` and the event stream). Results
come from :mod:`~ferry_planner.handlers.plan_status`, computed again only when an input changed."""

import logging
from collections.abc import Iterable

import msgspec

from ferry_planner.domain.plans import Plan
from ferry_planner.domain.views import PlanView
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import AlreadyExistsError, check_name
from ferry_planner.handlers.lookups import require, require_stored
from ferry_planner.handlers.plan_status import Lookups, forget, forget_all_but, plan_status
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
    forget(ports, name)
    changed(ports, "plan", name)


async def plan_view(ports: PlannerPorts, name: str) -> PlanView:
    found = await require(ports, Plan, "plan", name)
    return PlanView(plan=found, status=await plan_status(ports, found))


async def plans(ports: PlannerPorts) -> list[PlanView]:
    lookups = Lookups(ports)
    return [PlanView(plan=p, status=await plan_status(ports, p, lookups)) for p in await ports.resources.list(Plan)]


async def revalidate_plans(ports: PlannerPorts, inventories: Iterable[str] = ()) -> None:
    """Announce the providers whose inventory changed; validate every plan and announce
    each result that changed since it was last announced."""
    for provider in sorted(inventories):
        ports.changes.publish({"kind": "inventory", "name": provider})
    lookups = Lookups(ports)
    stored = await ports.resources.list(Plan)
    for plan in stored:
        try:
            await _announce_validation(ports, plan, lookups)
        except Exception:
            # One plan that cannot be validated must not stop the others' announcements.
            log.exception("revalidating plan %s failed; going on with the other plans", plan.name)
    forget_all_but(ports, {plan.name for plan in stored})  # plans deleted through another replica


async def _announce_validation(ports: PlannerPorts, plan: Plan, lookups: Lookups) -> None:
    """Publish the plan's result if it changed; it counts as announced once published."""
    status = await plan_status(ports, plan, lookups)
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
