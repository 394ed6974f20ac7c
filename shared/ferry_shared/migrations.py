"""Migration contracts: the commands the planner sends and the events the other services answer with.

One VM's cold migration is a chain of steps, each a command to the service that owns
the work and an event back to the planner, which alone decides what comes next:

    planner ── PowerOffSourceVm ──▶ inventory ── SourcePowerStateRecorded, SourcePowerOffRequested,
                                                 SourceVmPoweredOff ──▶ planner
    planner ── PrepareVolumes ────▶ kubevirt-writer ── VolumesPrepared ──▶ planner
    planner ── CopyDisk (per disk) ▶ transfer ── DiskCopyProgress…, DiskCopied ──▶ planner
    planner ── CreateVm ──────────▶ kubevirt-writer ── VmCreated ──▶ planner

A cancelled or failed VM gets ``CleanupVm`` (the writer removes what it created, then
``VmCleanedUp``) and ``RestoreSourcePowerState`` (the inventory powers the source back
on when the migration had powered it off). ``VmCancelRequested`` tells every transfer
worker to stop copying that VM's disks.

Every step message names its migration and source VM (:class:`StepCommand`, :class:`StepEvent`), and its
``message_id`` is derived from them and the step, so a retried publish deduplicates.
A step that fails permanently ends in a ``MessageFailed`` event whose ``about``
carries the same names, so the planner can fail the VM with the reason.
"""

from typing import ClassVar, Literal, TypedDict

import msgspec

from ferry_shared import subjects
from ferry_shared.ids import message_id
from ferry_shared.messages import Command, Event, StepRef
from ferry_shared.providers import ProviderSpec
from ferry_shared.target_vm import TargetVm


class StepCommand(Command, frozen=True, kw_only=True):
    """A command for one step of one VM of one migration."""

    migration: str
    vm_id: str

    def step_ref(self) -> StepRef:
        return StepRef(migration=self.migration, vm_id=self.vm_id)


class StepEvent(Event, frozen=True, kw_only=True):
    """An event about one step of one VM of one migration."""

    migration: str
    vm_id: str

    def step_ref(self) -> StepRef:
        return StepRef(migration=self.migration, vm_id=self.vm_id)


def step_id(migration: str, vm_id: str, step: str, *parts: object) -> str:
    """Deterministic ``message_id`` of one step of one VM of one migration."""
    return message_id(migration, vm_id, step, *(str(part) for part in parts))


class StepFields(TypedDict):
    """What addresses a step message: its deterministic id, its migration and its VM."""

    message_id: str
    migration: str
    vm_id: str


def step_fields(migration: str, vm_id: str, step: str, *parts: object) -> StepFields:
    """The addressing fields of one step's message, ``message_id`` from :func:`step_id`:
    ``VmCreated(**step_fields(migration, vm_id, "vm_created"), location=…)``."""
    return StepFields(message_id=step_id(migration, vm_id, step, *parts), migration=migration, vm_id=vm_id)


# ── source VM power (inventory) ─────────────────────────────────────────────────────


class PowerOffSourceVm(StepCommand, frozen=True, kw_only=True, tag="ferry.inventory.power_off_source_vm.v1"):
    """Record the source VM's power state, then power it off (guest shutdown when VMware
    Tools runs, hard power-off otherwise or after ``shutdown_timeout_seconds``)."""

    subject: ClassVar[str] = subjects.command_subject(subjects.INVENTORY, "power_off_source_vm")
    source: ProviderSpec
    shutdown_timeout_seconds: float = 300.0


class RestoreSourcePowerState(
    StepCommand, frozen=True, kw_only=True, tag="ferry.inventory.restore_source_power_state.v1"
):
    """Power the source VM back on when a failed or cancelled migration had powered it off."""

    subject: ClassVar[str] = subjects.command_subject(subjects.INVENTORY, "restore_source_power_state")
    source: ProviderSpec
    power_state: str  # the state recorded before the migration: poweredOn | poweredOff | suspended


class SourcePowerStateRecorded(
    StepEvent, frozen=True, kw_only=True, tag="ferry.inventory.source_power_state_recorded.v1"
):
    subject: ClassVar[str] = subjects.event_subject(subjects.INVENTORY, "source_power_state_recorded")
    power_state: str


class SourcePowerOffRequested(
    StepEvent, frozen=True, kw_only=True, tag="ferry.inventory.source_power_off_requested.v1"
):
    subject: ClassVar[str] = subjects.event_subject(subjects.INVENTORY, "source_power_off_requested")
    method: Literal["guest_shutdown", "power_off"]


class SourceVmPoweredOff(StepEvent, frozen=True, kw_only=True, tag="ferry.inventory.source_vm_powered_off.v1"):
    subject: ClassVar[str] = subjects.event_subject(subjects.INVENTORY, "source_vm_powered_off")


class SourcePowerStateRestored(
    StepEvent, frozen=True, kw_only=True, tag="ferry.inventory.source_power_state_restored.v1"
):
    subject: ClassVar[str] = subjects.event_subject(subjects.INVENTORY, "source_power_state_restored")
    power_state: str


# ── target objects (kubevirt-writer) ────────────────────────────────────────────────


class SinkLocation(msgspec.Struct, frozen=True, kw_only=True):
    """Where the transfer writes one disk: a sparse raw file, or an NBD export.

    ``file``: ``path`` on the machine (shared with the transfer worker for local targets).
    ``nbd``: ``host``, ``port`` and ``export`` of an NBD server (a sink pod's, on Kubernetes).
    ``tls_server_name``, when set, says the server requires TLS (``NBD_OPT_STARTTLS``) with a
    client certificate, and presents a certificate for that name (the sink pod's, signed by
    Ferry's NBD CA); the client verifies it against its own copy of the CA, never one sent here.
    """

    disk_key: int
    kind: Literal["file", "nbd"]
    size_bytes: int
    path: str = ""
    host: str = ""
    port: int = 0
    export: str = ""
    tls_server_name: str = ""

    def describe(self) -> str:
        if self.kind == "file":
            return self.path
        scheme = "nbds" if self.tls_server_name else "nbd"  # the NBD URI scheme of TLS
        return f"{scheme}://{self.host}:{self.port}/{self.export}"


class PrepareVolumes(StepCommand, frozen=True, kw_only=True, tag="ferry.kubevirt_writer.prepare_volumes.v1"):
    """Create the VM's volumes (PVCs or DataVolumes, or raw files) and the sinks that
    serve them, then answer with ``VolumesPrepared`` once every sink accepts writes."""

    subject: ClassVar[str] = subjects.command_subject(subjects.KUBEVIRT_WRITER, "prepare_volumes")
    target: ProviderSpec
    vm: TargetVm


class VolumesPrepared(StepEvent, frozen=True, kw_only=True, tag="ferry.kubevirt_writer.volumes_prepared.v1"):
    subject: ClassVar[str] = subjects.event_subject(subjects.KUBEVIRT_WRITER, "volumes_prepared")
    sinks: tuple[SinkLocation, ...]


class CreateVm(StepCommand, frozen=True, kw_only=True, tag="ferry.kubevirt_writer.create_vm.v1"):
    """Remove the sinks and create the VirtualMachine (or write its manifests)."""

    subject: ClassVar[str] = subjects.command_subject(subjects.KUBEVIRT_WRITER, "create_vm")
    target: ProviderSpec
    vm: TargetVm


class VmCreated(StepEvent, frozen=True, kw_only=True, tag="ferry.kubevirt_writer.vm_created.v1"):
    subject: ClassVar[str] = subjects.event_subject(subjects.KUBEVIRT_WRITER, "vm_created")
    location: str  # "namespace/name" on a cluster, or the directory of a local target


class CleanupVm(StepCommand, frozen=True, kw_only=True, tag="ferry.kubevirt_writer.cleanup_vm.v1"):
    """Remove everything the migration created for this VM on the target (idempotent)."""

    subject: ClassVar[str] = subjects.command_subject(subjects.KUBEVIRT_WRITER, "cleanup_vm")
    target: ProviderSpec
    vm: TargetVm


class VmCleanedUp(StepEvent, frozen=True, kw_only=True, tag="ferry.kubevirt_writer.vm_cleaned_up.v1"):
    subject: ClassVar[str] = subjects.event_subject(subjects.KUBEVIRT_WRITER, "vm_cleaned_up")
    removed: tuple[str, ...] = ()  # what was deleted, for the record ("PersistentVolumeClaim ns/name", …)


# ── disk copies (transfer) ──────────────────────────────────────────────────────────


class SourceDisk(msgspec.Struct, frozen=True, kw_only=True):
    """One source disk, as the datastore HTTP endpoint names it."""

    key: int
    file_name: str  # "[LocalDS_0] vm1/vm1.vmdk"; the flat extent is "<name>-flat.vmdk"
    datacenter: str
    capacity_bytes: int
    cbt: bool = False


class CopyDisk(StepCommand, frozen=True, kw_only=True, tag="ferry.transfer.copy_disk.v1"):
    """Copy one disk from the source datastore to its sink and verify it."""

    subject: ClassVar[str] = subjects.command_subject(subjects.TRANSFER, "copy_disk")
    source: ProviderSpec
    disk: SourceDisk
    sink: SinkLocation


class CopyRange(StepCommand, frozen=True, kw_only=True, tag="ferry.transfer.copy_range.v1"):
    """Copy one range of one disk (``CopyDisk`` is split into these; any worker takes any range).

    ``extents`` are the parts of ``[offset, offset + length)`` that hold data, when CBT told
    (the rest is written as zeroes or left a hole); empty means read the whole range and
    detect zero blocks.
    """

    subject: ClassVar[str] = subjects.command_subject(subjects.TRANSFER, "copy_range")
    source: ProviderSpec
    disk: SourceDisk
    sink: SinkLocation
    index: int
    offset: int
    length: int
    extents: tuple[tuple[int, int], ...] = ()  # (offset, length) pairs, absolute, inside the range


class DiskCopyProgress(StepEvent, frozen=True, kw_only=True, tag="ferry.transfer.disk_copy_progress.v1"):
    """Bytes of one disk accounted for so far (read and written, or skipped as zero), and
    apart from them the bytes actually moved: a rate or an ETA is taken from those."""

    subject: ClassVar[str] = subjects.event_subject(subjects.TRANSFER, "disk_copy_progress")
    disk_key: int
    bytes_done: int
    """Of the logical size: copied, or known zero (unallocated areas count as soon as the copy is planned)."""
    bytes_total: int
    bytes_read: int | None = None
    """Read from the source so far; None from a transfer that did not report it."""
    bytes_written: int | None = None
    """Written to the target as data (zero runs are written as holes and not counted); None when not reported."""
    bytes_to_read: int | None = None
    """To be read from the source in all: the extents CBT reported allocated, or the whole disk
    without CBT; None when unknown (a copy planned by an older transfer)."""


class DiskCopied(StepEvent, frozen=True, kw_only=True, tag="ferry.transfer.disk_copied.v1"):
    subject: ClassVar[str] = subjects.event_subject(subjects.TRANSFER, "disk_copied")
    disk_key: int
    bytes_total: int
    bytes_read: int
    bytes_written: int
    zero_bytes_skipped: int
    sha256: str
    seconds: float


class DiskCopyCanceled(StepEvent, frozen=True, kw_only=True, tag="ferry.transfer.disk_copy_canceled.v1"):
    subject: ClassVar[str] = subjects.event_subject(subjects.TRANSFER, "disk_copy_canceled")
    disk_key: int


# ── migration lifecycle (planner) ───────────────────────────────────────────────────


class VmCancelRequested(StepEvent, frozen=True, kw_only=True, tag="ferry.planner.vm_cancel_requested.v1"):
    """A user cancelled this VM: transfer workers stop its copies now."""

    subject: ClassVar[str] = subjects.event_subject(subjects.PLANNER, "vm_cancel_requested")


class VmPhaseChanged(StepEvent, frozen=True, kw_only=True, tag="ferry.planner.vm_phase_changed.v1"):
    """One VM of a migration entered a phase (``Completed``, ``Failed`` and ``Canceled`` end it)."""

    subject: ClassVar[str] = subjects.event_subject(subjects.PLANNER, "vm_phase_changed")
    plan: str
    vm_name: str
    phase: str
    reason: str = ""


class MigrationFinished(Event, frozen=True, kw_only=True, tag="ferry.planner.migration_finished.v1"):
    subject: ClassVar[str] = subjects.event_subject(subjects.PLANNER, "migration_finished")
    migration: str
    plan: str
    succeeded: int
    failed: int
    canceled: int
