"""A plan's validation result, computed once per change of what it depends on.

Listing, showing and announcing plans all come here. A result is kept per plan with the
inputs it was computed from (:class:`Inputs`): the plan itself, its providers' records and
maps as stored, the inventory version of each of its two providers (the mirror counts every
record and status it applies, source and target side: VMs and MACs already on the target,
a local target's contents), and the VMs its migrations completed. A result is reused only
while every input compares equal, so it cannot be older than the last change the replica
has read; each replica keeps its own.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.migrations import Migration
from ferry_planner.domain.new_migration import completed_before
from ferry_planner.domain.plan_validation import PlanContext, validate_plan
from ferry_planner.domain.plans import Plan
from ferry_planner.domain.ports import Resource
from ferry_planner.domain.providers import ProviderRecord
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.lookups import is_checked, is_ready
from ferry_shared.plans import PlanStatus


@dataclass(frozen=True)
class Inputs:
    """Everything a plan's result depends on; equal inputs give an equal result."""

    plan: Plan
    source: ProviderRecord | None
    target: ProviderRecord | None
    network_map: NetworkMap | None
    storage_map: StorageMap | None
    source_inventory: int
    target_inventory: int
    migrated: tuple[tuple[str, str], ...]


@dataclass
class Lookups:
    """Providers and maps read once per listing, however many plans name them."""

    ports: PlannerPorts
    _read: dict[tuple[type, str], object] = field(default_factory=dict)
    _migrated: dict[str, dict[str, str]] | None = None

    async def get(self, kind: type[Resource], name: str) -> Resource | None:
        if (kind, name) not in self._read:
            self._read[(kind, name)] = await self.ports.resources.get(kind, name)
        found: Resource | None = self._read[(kind, name)]  # type: ignore[assignment]
        return found

    def migrated(self, plan: str) -> dict[str, str]:
        if self._migrated is None:
            self._migrated = _completed_by_plan(self.ports.migrations.all())
        return self._migrated.get(plan, {})


def _completed_by_plan(migrations: Iterable[Migration]) -> dict[str, dict[str, str]]:
    by_plan: defaultdict[str, list[Migration]] = defaultdict(list)
    for migration in migrations:
        by_plan[migration.plan].append(migration)
    return {plan: completed_before(runs) for plan, runs in by_plan.items()}


async def plan_status(ports: PlannerPorts, plan: Plan, lookups: Lookups | None = None) -> PlanStatus:
    """The plan's validation result: the kept one while its inputs are unchanged."""
    lookups = lookups or Lookups(ports)
    inputs = await _inputs_of(lookups, plan)
    kept = ports.validated.results.get(plan.name)
    if kept is not None and kept[0] == inputs:
        return kept[1]
    status = validate_plan(plan, _context(ports, inputs, lookups.migrated(plan.name)))
    ports.validated.results[plan.name] = (inputs, status)
    return status


def forget(ports: PlannerPorts, plan: str) -> None:
    ports.validated.results.pop(plan, None)


async def _inputs_of(lookups: Lookups, plan: Plan) -> Inputs:
    inventory = lookups.ports.inventory
    return Inputs(
        plan=plan,
        source=await lookups.get(ProviderRecord, plan.source_provider),
        target=await lookups.get(ProviderRecord, plan.target_provider),
        network_map=await lookups.get(NetworkMap, plan.network_map),
        storage_map=await lookups.get(StorageMap, plan.storage_map),
        source_inventory=inventory.version(plan.source_provider),
        target_inventory=inventory.version(plan.target_provider),
        migrated=tuple(sorted(lookups.migrated(plan.name).items())),
    )


def _context(ports: PlannerPorts, inputs: Inputs, migrated: dict[str, str]) -> PlanContext:
    plan, source, target = inputs.plan, inputs.source, inputs.target
    return PlanContext(
        source=ports.inventory.source_view(plan.source_provider) if source else None,
        target=ports.inventory.target_view(plan.target_provider, checked=is_checked(target)) if target else None,
        network_map=inputs.network_map,
        storage_map=inputs.storage_map,
        source_ready=is_ready(ports, source),
        target_ready=is_ready(ports, target),
        migrated=migrated,
    )
