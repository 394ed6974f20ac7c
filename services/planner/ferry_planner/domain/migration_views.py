"""What the API and the server-sent-events stream show of a migration: the views the CLI reads
(``MigrationView`` for ``/migrations``, ``VmMigrationView`` for each ``migration_vm`` change)."""

from datetime import datetime

import msgspec

from ferry_planner.domain.migrations import DiskProgress, Migration, MigrationCounts, PhaseRecord, VmMigration
from ferry_planner.domain.waiting import Waiting, waiting_for


class VmMigrationView(msgspec.Struct, frozen=True, kw_only=True):
    vm_id: str
    vm_name: str
    target_name: str
    host: str
    phase: str
    reason: str
    error_code: str
    started_at: datetime | None
    completed_at: datetime | None
    pipeline: tuple[PhaseRecord, ...]
    disks: tuple[DiskProgress, ...]
    location: str
    waiting_for: Waiting | None = None  # whose answer an active VM waits for, since it last heard


class MigrationView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    plan: str
    phase: str
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None
    counts: MigrationCounts
    vms: tuple[VmMigrationView, ...]


def vm_view(vm: VmMigration) -> VmMigrationView:
    return VmMigrationView(
        vm_id=vm.vm_id,
        vm_name=vm.vm_name,
        target_name=vm.target_name,
        host=vm.host,
        phase=vm.phase.value,
        reason=vm.reason,
        error_code=vm.error_code,
        started_at=vm.started_at,
        completed_at=vm.completed_at,
        pipeline=vm.pipeline,
        disks=vm.disks,
        location=vm.location,
        waiting_for=waiting_for(vm),
    )


def migration_view(migration: Migration) -> MigrationView:
    return MigrationView(
        name=migration.name,
        plan=migration.plan,
        phase=migration.phase.value,
        created_at=migration.created_at,
        started_at=migration.started_at,
        completed_at=migration.completed_at,
        counts=migration.counts(),
        vms=tuple(vm_view(vm) for vm in migration.vms),
    )
