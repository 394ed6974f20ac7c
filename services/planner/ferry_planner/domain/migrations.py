"""Migrations: one run of a plan, and where each of its VMs is in the cold pipeline.

Plain frozen values (stored in the planner's bucket as ``migration.<name>``); the
state machine in :mod:`migration_machine` moves a :class:`VmMigration` from phase to
phase, :mod:`scheduling` decides which queued VMs may start. No I/O.
"""

from datetime import datetime
from enum import StrEnum

import msgspec

from ferry_shared.migrations import SinkLocation, SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_shared.target_vm import TargetVm


class VmPhase(StrEnum):
    """Where one VM is (the names the API shows)."""

    QUEUED = "Queued"
    STARTED = "Started"
    STORE_POWER_STATE = "StorePowerState"
    POWER_OFF_SOURCE = "PowerOffSource"
    WAIT_FOR_POWER_OFF = "WaitForPowerOff"
    CREATE_DATA_VOLUMES = "CreateDataVolumes"
    COPY_DISKS = "CopyDisks"
    CREATE_VM = "CreateVM"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELING = "Canceling"
    CANCELED = "Canceled"
    SKIPPED = "Skipped"


PIPELINE: tuple[VmPhase, ...] = (
    VmPhase.STARTED,
    VmPhase.STORE_POWER_STATE,
    VmPhase.POWER_OFF_SOURCE,
    VmPhase.WAIT_FOR_POWER_OFF,
    VmPhase.CREATE_DATA_VOLUMES,
    VmPhase.COPY_DISKS,
    VmPhase.CREATE_VM,
    VmPhase.COMPLETED,
)
"""The cold pipeline in order; every VM that runs records each of these once."""

ACTIVE = frozenset(PIPELINE[:-1])
"""Phases in which a VM is moving through the pipeline."""

FINISHED = frozenset({VmPhase.COMPLETED, VmPhase.FAILED, VmPhase.CANCELED, VmPhase.SKIPPED})
"""Phases a VM never leaves."""

HOLDS_SLOT = ACTIVE | {VmPhase.CANCELING}
"""Phases in which a VM holds one of its source host's slots."""


class MigrationPhase(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


class PhaseRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One pipeline phase a VM entered; ``completed_at`` stays None for the phase it
    was in when it failed or was cancelled."""

    name: str
    started_at: datetime
    completed_at: datetime | None = None


class DiskProgress(msgspec.Struct, frozen=True, kw_only=True):
    """One disk's copy: ``bytes_done`` of the logical ``bytes_total`` (holes included), and
    apart from it the bytes moved — ``bytes_read`` of ``bytes_to_read`` (None: not reported, or unknown)."""

    key: int
    file_name: str
    bytes_total: int
    bytes_done: int = 0
    completed: bool = False
    bytes_read: int | None = None
    bytes_written: int | None = None
    bytes_to_read: int | None = None


class VmMigration(msgspec.Struct, frozen=True, kw_only=True):
    """One VM of a migration: what the API shows, and what the machine needs to go on."""

    vm_id: str
    vm_name: str
    target_name: str
    host: str  # the source host's name, for people
    host_key: str  # "<provider>/<host id>": the slot budget's key
    phase: VmPhase = VmPhase.QUEUED
    reason: str = ""
    error_code: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    pipeline: tuple[PhaseRecord, ...] = ()
    disks: tuple[DiskProgress, ...] = ()
    location: str = ""
    # What to build and copy (fixed when the migration is created; None when it could not be built).
    blueprint: TargetVm | None = None
    source_disks: tuple[SourceDisk, ...] = ()
    # The source's power state before the migration touched it: the inventory's view when
    # the migration was created, replaced by what the inventory recorded before powering
    # off (``source_power_recorded``; the first record wins).
    source_power_state: str = ""
    source_power_recorded: bool = False
    # What happened so far.
    power_off_requested: bool = False
    sinks: tuple[SinkLocation, ...] = ()
    awaiting: str = ""  # Canceling: the step still running whose answer comes before the cleanup
    restore_pending: bool = False  # RestoreSourcePowerState sent, its answer not yet in
    heard_at: datetime | None = None  # the last change of this VM: the start of its wait for an answer
    trace_parent: str = ""  # W3C traceparent of the VM's own trace (see handlers.vm_traces)

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    @property
    def holds_slot(self) -> bool:
        return self.phase in HOLDS_SLOT


class MigrationCounts(msgspec.Struct, frozen=True, kw_only=True):
    total: int = 0
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    skipped: int = 0


class MigrationHeader(msgspec.Struct, frozen=True, kw_only=True):
    """What a migration is, apart from its VMs: the plan it runs, its providers and times."""

    name: str
    plan: str
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None = None
    source: ProviderSpec
    target: ProviderSpec


class Migration(MigrationHeader, frozen=True, kw_only=True):
    """One run of a plan; its VMs in plan order."""

    vms: tuple[VmMigration, ...] = ()

    @property
    def phase(self) -> MigrationPhase:
        """Running while any VM is unfinished; then Failed if any failed, else Canceled if
        any was cancelled, else Succeeded."""
        phases = {vm.phase for vm in self.vms}
        if any(phase not in FINISHED for phase in phases):
            return MigrationPhase.RUNNING
        if VmPhase.FAILED in phases:
            return MigrationPhase.FAILED
        if VmPhase.CANCELED in phases:
            return MigrationPhase.CANCELED
        return MigrationPhase.SUCCEEDED

    def counts(self) -> MigrationCounts:
        phases = [vm.phase for vm in self.vms]
        return MigrationCounts(
            total=len(phases),
            queued=phases.count(VmPhase.QUEUED),
            running=sum(phase in HOLDS_SLOT for phase in phases),
            succeeded=phases.count(VmPhase.COMPLETED),
            failed=phases.count(VmPhase.FAILED),
            canceled=phases.count(VmPhase.CANCELED),
            skipped=phases.count(VmPhase.SKIPPED),
        )

    def vm(self, vm_id: str) -> VmMigration | None:
        return next((vm for vm in self.vms if vm.vm_id == vm_id), None)

    def with_vm(self, updated: VmMigration) -> "Migration":
        """This migration with one VM replaced (matched by id)."""
        vms = tuple(updated if vm.vm_id == updated.vm_id else vm for vm in self.vms)
        return msgspec.structs.replace(self, vms=vms)
