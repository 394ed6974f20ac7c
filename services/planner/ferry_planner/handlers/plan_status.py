"""A plan's validation result, computed again only when something it depends on changed.

Listing, showing and announcing plans all come here. A result is kept per plan with what
it was computed from: :class:`Inputs` (the plan itself, its providers' records and maps as
stored, whether each provider is ready, the VMs its migrations completed), and the
inventory lookups the validation made with their answers
(:class:`~ferry_planner.domain.inventory_reads.InventoryReads`: the source's VMs, networks,
datastores and hosts it named; the target's namespace, and the VMs on the target with its
VMs' names or MACs, a local target's too). It is reused while the inputs compare equal and,
once either provider's inventory version moved, every lookup answers as before, so it is
never older than the last change the replica has read. Each replica keeps its own.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ferry_planner.domain.inventory_reads import InventoryReads, RecordingSource, RecordingTarget
from ferry_planner.domain.inventory_view import SourceView, TargetView
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
    """What a plan's result depends on besides the inventory records."""

    plan: Plan
    source: ProviderRecord | None
    target: ProviderRecord | None
    network_map: NetworkMap | None
    storage_map: StorageMap | None
    source_ready: bool
    target_ready: bool
    migrated: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Kept:
    """A result, with its inputs, the inventory versions it was last checked at, and its lookups."""

    inputs: Inputs
    versions: tuple[int, int]
    reads: InventoryReads
    status: PlanStatus


@dataclass(frozen=True)
class Views:
    source: SourceView | None
    target: TargetView | None


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
    """The plan's validation result: the kept one while it still holds."""
    lookups = lookups or Lookups(ports)
    inputs = await _inputs_of(lookups, plan)
    versions = (ports.inventory.version(plan.source_provider), ports.inventory.version(plan.target_provider))
    kept = ports.validated.results.get(plan.name)
    if isinstance(kept, Kept) and kept.inputs == inputs:
        if kept.versions == versions:
            return kept.status
        views = _views(ports, inputs)
        if kept.reads.still_hold(views.source, views.target):
            ports.validated.results[plan.name] = Kept(inputs=inputs, versions=versions, reads=kept.reads,
                                                      status=kept.status)  # fmt: skip
            return kept.status
    views = _views(ports, inputs)
    reads = InventoryReads()
    status = validate_plan(plan, _context(inputs, views, reads, lookups.migrated(plan.name)))
    ports.validated.results[plan.name] = Kept(inputs=inputs, versions=versions, reads=reads, status=status)
    return status


def forget(ports: PlannerPorts, plan: str) -> None:
    ports.validated.results.pop(plan, None)


def forget_all_but(ports: PlannerPorts, plans: set[str]) -> None:
    for name in [name for name in ports.validated.results if name not in plans]:
        del ports.validated.results[name]


async def _inputs_of(lookups: Lookups, plan: Plan) -> Inputs:
    ports = lookups.ports
    source = await lookups.get(ProviderRecord, plan.source_provider)
    target = await lookups.get(ProviderRecord, plan.target_provider)
    return Inputs(
        plan=plan,
        source=source,
        target=target,
        network_map=await lookups.get(NetworkMap, plan.network_map),
        storage_map=await lookups.get(StorageMap, plan.storage_map),
        source_ready=is_ready(ports, source),
        target_ready=is_ready(ports, target),
        migrated=tuple(sorted(lookups.migrated(plan.name).items())),
    )


def _views(ports: PlannerPorts, inputs: Inputs) -> Views:
    plan, inventory = inputs.plan, ports.inventory
    return Views(
        source=inventory.source_view(plan.source_provider) if inputs.source else None,
        target=inventory.target_view(plan.target_provider, checked=is_checked(inputs.target))
        if inputs.target
        else None,
    )


def _context(inputs: Inputs, views: Views, reads: InventoryReads, migrated: dict[str, str]) -> PlanContext:
    return PlanContext(
        source=RecordingSource(views.source, reads) if views.source is not None else None,
        target=RecordingTarget(views.target, reads) if views.target is not None else None,
        network_map=inputs.network_map,
        storage_map=inputs.storage_map,
        source_ready=inputs.source_ready,
        target_ready=inputs.target_ready,
        migrated=migrated,
    )
