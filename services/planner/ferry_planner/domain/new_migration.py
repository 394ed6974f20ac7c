"""A new migration of a Ready plan: its name, and one entry per plan VM.

A VM that Completed in an earlier migration of the same plan is ``Skipped``; a VM that
cannot be described on the target starts ``Failed`` with the reason; every other VM is
``Queued`` with its blueprint. Pure.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from ferry_planner.domain.blueprint import BlueprintError, build_blueprint
from ferry_planner.domain.inventory_view import SourceView
from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.migrations import DiskProgress, Migration, VmMigration, VmPhase
from ferry_planner.domain.plans import Plan
from ferry_shared.inventory import VmRecord
from ferry_shared.plans import PlanStatus
from ferry_shared.providers import ProviderSpec

replace = msgspec.structs.replace


@dataclass(frozen=True)
class MigrationInputs:
    """Everything a new migration is built from, as it is now."""

    plan: Plan
    status: PlanStatus
    source: SourceView
    network_map: NetworkMap
    storage_map: StorageMap
    source_provider: ProviderSpec
    target_provider: ProviderSpec


def next_name(plan: str, taken: Sequence[str], runs_of_plan: int) -> str:
    """``<plan>-<n>`` with n one more than the plan's migrations so far (and free)."""
    n = runs_of_plan + 1
    while f"{plan}-{n}" in taken:
        n += 1
    return f"{plan}-{n}"


def completed_before(earlier: Sequence[Migration]) -> dict[str, str]:
    """VM id → the latest earlier migration in which it Completed."""
    done: dict[str, str] = {}
    for migration in sorted(earlier, key=lambda m: (m.created_at, m.name)):
        for vm in migration.vms:
            if vm.phase is VmPhase.COMPLETED:
                done[vm.vm_id] = migration.name
    return done


def _host_key(provider: str, vm: VmRecord) -> str:
    return f"{provider}/{vm.host_id or vm.host_name or '?'}"


def _vm_entry(
    record: VmRecord, target_name: str, inputs: MigrationInputs, done_by: str | None, now: datetime
) -> VmMigration:
    base = VmMigration(
        vm_id=record.id,
        vm_name=record.name,
        target_name=target_name,
        host=record.host_name or record.host_id,
        host_key=_host_key(inputs.plan.source_provider, record),
    )
    if done_by is not None:
        return replace(base, phase=VmPhase.SKIPPED, reason=f"already migrated by migration {done_by}", completed_at=now)
    try:
        blueprint, disks = build_blueprint(
            record,
            plan=inputs.plan,
            target_name=target_name,
            network_map=inputs.network_map,
            storage_map=inputs.storage_map,
            source=inputs.source,
        )
    except BlueprintError as error:
        return replace(base, phase=VmPhase.FAILED, reason=str(error), error_code="invalid_source_vm", completed_at=now)
    return replace(
        base,
        source_power_state=record.power_state,
        blueprint=blueprint,
        source_disks=disks,
        disks=tuple(DiskProgress(key=d.key, file_name=d.file_name, bytes_total=d.capacity_bytes) for d in disks),
    )


def new_migration(name: str, inputs: MigrationInputs, earlier: Sequence[Migration], now: datetime) -> Migration:
    """The migration ``name`` of a Ready plan, every VM Queued, Skipped or (unbuildable) Failed."""
    done = completed_before(earlier)
    vms: list[VmMigration] = []
    for result in inputs.status.vms:
        matches = inputs.source.find_vms(result.id)
        if not matches:
            raise BlueprintError(f"VM '{result.ref}' ({result.id}) is no longer in the source inventory")
        vms.append(_vm_entry(matches[0], result.target_name, inputs, done.get(result.id), now))
    finished = all(vm.finished for vm in vms)
    return Migration(
        name=name,
        plan=inputs.plan.name,
        created_at=now,
        started_at=now,
        completed_at=now if finished else None,
        source=inputs.source_provider,
        target=inputs.target_provider,
        vms=tuple(vms),
    )
