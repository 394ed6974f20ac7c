"""Plan validation: per-VM concerns and plan conditions, from inventory and maps.

Pure: the planner calls :func:`validate_plan` again whenever the inventory, a map or
the plan changes.
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from ferry_planner.domain import plan_clashes, vm_checks
from ferry_planner.domain.inventory_reads import SourceLookups, TargetLookups
from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_shared.dns1123 import is_dns1123_label
from ferry_shared.inventory import VmRecord
from ferry_shared.plans import Category, Concern, Condition, PlanStatus, VmValidation


@dataclass(frozen=True)
class PlanContext:
    """Everything a plan refers to, as far as it could be found."""

    source: SourceLookups | None
    target: TargetLookups | None
    network_map: NetworkMap | None
    storage_map: StorageMap | None
    source_ready: bool
    target_ready: bool
    migrated: Mapping[str, str] = field(default_factory=dict)
    """VM id → the migration of this plan that completed it (its target VM is ours, not in the way)."""


def _critical(type_: str, message: str) -> Condition:
    return Condition(type=type_, category=Category.CRITICAL, message=message)


def _plan_conditions(plan: Plan, ctx: PlanContext) -> list[Condition]:
    conditions: list[Condition] = []
    if ctx.source is None:
        conditions.append(
            _critical("SourceProviderNotFound", f"source provider '{plan.source_provider}' does not exist")
        )
    elif not ctx.source_ready:
        conditions.append(_critical("SourceProviderNotReady", f"source provider '{plan.source_provider}' is not ready"))
    if ctx.target is None:
        conditions.append(
            _critical("TargetProviderNotFound", f"target provider '{plan.target_provider}' does not exist")
        )
    elif not ctx.target_ready:
        conditions.append(_critical("TargetProviderNotReady", f"target provider '{plan.target_provider}' is not ready"))
    elif not is_dns1123_label(plan.target_namespace):
        conditions.append(
            _critical(
                "TargetNamespaceInvalid",
                f"target namespace '{plan.target_namespace}' is not a DNS-1123 label (lower-case letters, digits "
                "and '-', at most 63 characters); choose another",
            )
        )
    elif not ctx.target.has_namespace(plan.target_namespace):
        conditions.append(
            _critical(
                "TargetNamespaceNotFound",
                f"namespace '{plan.target_namespace}' does not exist on '{plan.target_provider}'; create it first",
            )
        )
    for kind, wanted, found in (
        ("NetworkMap", plan.network_map, ctx.network_map),
        ("StorageMap", plan.storage_map, ctx.storage_map),
    ):
        if found is None:
            conditions.append(_critical(f"{kind}NotFound", f"{kind} '{wanted}' does not exist"))
        elif (found.source_provider, found.target_provider) != (plan.source_provider, plan.target_provider):
            conditions.append(
                _critical(
                    f"{kind}ProviderMismatch",
                    f"{kind} '{wanted}' maps {found.source_provider} → {found.target_provider}, "
                    f"but the plan moves {plan.source_provider} → {plan.target_provider}",
                )
            )
    if not plan.vms:
        conditions.append(_critical("NoVMs", "the plan names no VMs"))
    return conditions


def _resolve(plan_vm: PlanVm, source: SourceLookups) -> tuple[VmRecord | None, list[Concern]]:
    matches = source.find_vms(plan_vm.ref)
    if not matches:
        return None, [
            Concern(
                id="vm.not_found",
                category=Category.CRITICAL,
                label="VM not found",
                assessment=f"no VM named or with id '{plan_vm.ref}' in the source inventory",
            )
        ]
    if len({vm.id for vm in matches}) > 1:
        ids = ", ".join(sorted({vm.id for vm in matches}))
        return None, [
            Concern(
                id="vm.ambiguous",
                category=Category.CRITICAL,
                label="VM name is ambiguous",
                assessment=f"several VMs are named '{plan_vm.ref}' ({ids}); name the VM by id",
            )
        ]
    return matches[0], []


def validate_plan(plan: Plan, ctx: PlanContext) -> PlanStatus:
    """Validate ``plan`` against what it refers to."""
    conditions = _plan_conditions(plan, ctx)
    results: list[VmValidation] = []
    resolved: list[VmRecord] = []
    for plan_vm in plan.vms:
        if ctx.source is None:
            results.append(VmValidation(ref=plan_vm.ref))
            continue
        vm, concerns = _resolve(plan_vm, ctx.source)
        if vm is None:
            results.append(VmValidation(ref=plan_vm.ref, concerns=tuple(concerns)))
            continue
        resolved.append(vm)
        target_name, name_concerns = vm_checks.target_name(vm, plan_vm.target_name)
        concerns += name_concerns
        concerns += vm_checks.target_namespace(vm, target_name, plan.target_namespace)
        if ctx.network_map is not None:
            concerns += vm_checks.networks(vm, ctx.network_map, ctx.source)
        if ctx.storage_map is not None:
            concerns += vm_checks.storage(vm, ctx.storage_map, ctx.source)
        if vm.id in ctx.migrated:
            concerns.append(vm_checks.already_migrated(ctx.migrated[vm.id]))
        elif ctx.target is not None and is_dns1123_label(target_name):
            concerns += vm_checks.target_conflicts(vm, target_name, plan.target_namespace, ctx.target)
        concerns += vm_checks.disks(vm)
        concerns += vm_checks.hardware(vm, ctx.source)
        results.append(
            VmValidation(ref=plan_vm.ref, id=vm.id, name=vm.name, target_name=target_name, concerns=tuple(concerns))
        )

    duplicates = {vm_id for vm_id, count in Counter(vm.id for vm in resolved).items() if count > 1}
    if duplicates:
        conditions.append(_critical("DuplicateVM", f"the plan names these VMs more than once: {sorted(duplicates)}"))
        results = [_with_concerns(r, _duplicate_concern(r)) if r.id in duplicates else r for r in results]
    distinct = [vm for vm in {vm.id: vm for vm in resolved}.values() if vm.id not in duplicates]
    target_names = {r.id: r.target_name for r in results if r.id}
    conditions += _clash_conditions(distinct, target_names)
    clashes = plan_clashes.clashes(distinct, target_names)
    results = [_with_concerns(r, *clashes[r.id]) if r.id in clashes else r for r in results]

    critical = any(c.category is Category.CRITICAL for c in conditions) or any(
        concern.category is Category.CRITICAL for r in results for concern in r.concerns
    )
    return PlanStatus(ready=not critical, conditions=tuple(conditions), vms=tuple(results))


def _clash_conditions(distinct: list[VmRecord], target_names: dict[str, str]) -> list[Condition]:
    """Plan conditions for VMs of the plan that would share a target name or a MAC address."""
    conditions: list[Condition] = []
    names = Counter(target_names[vm.id] for vm in distinct if target_names.get(vm.id))
    if clashing := sorted(name for name, count in names.items() if count > 1):
        conditions.append(_critical("DuplicateTargetName", f"several VMs would get the same name: {clashing}"))
    if shared := plan_clashes.shared_macs(distinct):
        conditions.append(_critical("DuplicateMAC", f"several VMs of the plan have the same MAC address: {shared}"))
    return conditions


def _duplicate_concern(result: VmValidation) -> Concern:
    return Concern(
        id="vm.duplicate",
        category=Category.CRITICAL,
        label="VM listed twice",
        assessment=f"VM '{result.name}' ({result.id}) appears more than once in the plan; list it once",
    )


def _with_concerns(result: VmValidation, *concerns: Concern) -> VmValidation:
    return VmValidation(
        ref=result.ref,
        id=result.id,
        name=result.name,
        target_name=result.target_name,
        concerns=(*result.concerns, *concerns),
    )
