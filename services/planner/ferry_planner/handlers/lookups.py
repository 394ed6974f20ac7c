"""Reading the planner's resources for a use case: a record that must exist, and the
inventory views validation runs against."""

from ferry_planner.domain.inventory_view import TargetView
from ferry_planner.domain.ports import Resource
from ferry_planner.domain.providers import ProviderRecord, effective_status
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import NotFoundError
from ferry_shared.providers import ProviderPhase


async def require(ports: PlannerPorts, kind: type[Resource], what: str, name: str) -> Resource:
    found = await ports.resources.get(kind, name)
    if found is None:
        raise NotFoundError(what, name)
    return found


async def require_stored(ports: PlannerPorts, kind: type[Resource], what: str, name: str) -> int:
    """The revision of a record that must exist, readable or not (so a record that no longer
    decodes can still be deleted)."""
    revision = await ports.resources.revision(kind, name)
    if revision == 0:
        raise NotFoundError(what, name)
    return revision


async def target_view(ports: PlannerPorts, provider: str) -> TargetView:
    """The target's inventory; a local directory target has nothing to check against."""
    record = await ports.resources.get(ProviderRecord, provider)
    return ports.inventory.target_view(provider, checked=is_checked(record))


def is_checked(target: ProviderRecord | None) -> bool:
    """Whether a target has namespaces, storage classes and NADs to check a plan against."""
    return target is None or target.spec.type != "local"


def is_ready(ports: PlannerPorts, record: ProviderRecord | None) -> bool:
    if record is None:
        return False
    return effective_status(record, ports.inventory.status(record.spec.name)).phase is ProviderPhase.READY
