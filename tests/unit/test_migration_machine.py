"""The per-VM cold-migration state machine (pure: state + event → state + messages)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from ferry_planner.domain import migration_machine as machine
from ferry_planner.domain.migration_machine import MachineContext, Step
from ferry_planner.domain.migrations import PIPELINE, DiskProgress, VmMigration, VmPhase
from ferry_shared.messages import Message, MessageFailed, StepRef
from ferry_shared.migrations import (
    CleanupVm,
    CopyDisk,
    CreateVm,
    DiskCopied,
    DiskCopyProgress,
    PowerOffSourceVm,
    PrepareVolumes,
    RestoreSourcePowerState,
    SinkLocation,
    SourceDisk,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourceVmPoweredOff,
    StepEvent,
    VmCancelRequested,
    VmCleanedUp,
    VmCreated,
    VmPhaseChanged,
    VolumesPrepared,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.target_vm import TargetDisk, TargetVm

CTX = MachineContext(
    migration="p1-1",
    plan="p1",
    source=ProviderSpec(name="vc", type="vsphere", url="https://vc/sdk", username="u", insecure=True),
    target=ProviderSpec(name="kube", type="kubernetes"),
)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
GIB = 2**30


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def queued_vm(*, disks: int = 2, power_state: str = "poweredOn") -> VmMigration:
    source_disks = tuple(
        SourceDisk(key=2000 + i, file_name=f"[ds] web/web_{i}.vmdk", datacenter="DC0", capacity_bytes=GIB)
        for i in range(disks)
    )
    blueprint = TargetVm(
        name="web-01", namespace="ns", source_provider="vc", source_vm_id="vm-1", source_vm_name="Web 01",
        plan="p1", memory_mib=1024, run=power_state == "poweredOn",
        disks=tuple(TargetDisk(key=d.key, source_file=d.file_name, capacity_bytes=GIB) for d in source_disks),
    )  # fmt: skip
    return VmMigration(
        vm_id="vm-1",
        vm_name="Web 01",
        target_name="web-01",
        host="esx-1",
        host_key="vc/host-1",
        blueprint=blueprint,
        source_disks=source_disks,
        source_power_state=power_state,
        disks=tuple(DiskProgress(key=d.key, file_name=d.file_name, bytes_total=GIB) for d in source_disks),
    )


def sinks(vm: VmMigration) -> tuple[SinkLocation, ...]:
    return tuple(
        SinkLocation(disk_key=d.key, kind="file", size_bytes=d.capacity_bytes, path=f"/t/{d.key}.raw")
        for d in vm.source_disks
    )


def event(kind: type[StepEvent], **fields: Any) -> StepEvent:
    return kind(message_id="e", migration="p1-1", vm_id="vm-1", **fields)


def apply(vm: VmMigration, message: StepEvent | MessageFailed, second: int = 1) -> Step:
    return machine.on_event(vm, message, CTX, at(second))


def commands(step: Step) -> list[Message]:
    return [m for m in step.messages if not isinstance(m, VmPhaseChanged)]


def phases_announced(step: Step) -> list[str]:
    return [m.phase for m in step.messages if isinstance(m, VmPhaseChanged)]


def copying(vm: VmMigration) -> VmMigration:
    """``vm`` moved to CopyDisks the ordinary way."""
    vm = machine.start(vm, CTX, at(0)).vm
    vm = apply(vm, event(SourcePowerStateRecorded, power_state=vm.source_power_state)).vm
    vm = apply(vm, event(SourcePowerOffRequested, method="guest_shutdown")).vm
    vm = apply(vm, event(SourceVmPoweredOff)).vm
    vm = apply(vm, event(VolumesPrepared, sinks=sinks(vm))).vm
    assert vm.phase is VmPhase.COPY_DISKS
    return vm


def failed(type_: type[Message], *, code: str = "unreachable", reason: str = "no answer") -> MessageFailed:
    return MessageFailed(
        message_id="f", failed_subject=type_.subject, failed_type=type_.type_tag(), stream_sequence=9, attempts=5,
        service="transfer", error_code=code, reason=reason, about=StepRef(migration="p1-1", vm_id="vm-1"),
    )  # fmt: skip


def test_a_powered_on_vm_walks_the_whole_cold_pipeline() -> None:
    step = machine.start(queued_vm(), CTX, at(0))
    assert step.vm.phase is VmPhase.STORE_POWER_STATE
    assert phases_announced(step) == ["Started", "StorePowerState"]
    [power_off] = commands(step)
    assert isinstance(power_off, PowerOffSourceVm)
    assert (power_off.migration, power_off.vm_id, power_off.source) == ("p1-1", "vm-1", CTX.source)
    assert power_off.message_id == machine.start(queued_vm(), CTX, at(5)).messages[-1].message_id, "deterministic id"

    step = apply(step.vm, event(SourcePowerStateRecorded, power_state="poweredOn"), 1)
    assert (step.vm.phase, step.vm.source_power_state, commands(step)) == (VmPhase.POWER_OFF_SOURCE, "poweredOn", [])
    step = apply(step.vm, event(SourcePowerOffRequested, method="guest_shutdown"), 2)
    assert step.vm.phase is VmPhase.WAIT_FOR_POWER_OFF
    step = apply(step.vm, event(SourceVmPoweredOff), 30)
    [prepare] = commands(step)
    assert isinstance(prepare, PrepareVolumes)
    assert prepare.vm == queued_vm().blueprint
    assert prepare.target == CTX.target

    step = apply(step.vm, event(VolumesPrepared, sinks=sinks(step.vm)), 31)
    assert step.vm.phase is VmPhase.COPY_DISKS
    copies = commands(step)
    assert [(c.disk.key, c.sink.path) for c in copies if isinstance(c, CopyDisk)] == [
        (2000, "/t/2000.raw"),
        (2001, "/t/2001.raw"),
    ]
    assert len({c.message_id for c in copies}) == 2

    step = apply(step.vm, event(DiskCopyProgress, disk_key=2000, bytes_done=GIB // 2, bytes_total=GIB), 32)
    assert step.progress_only
    assert step.vm.disks[0].bytes_done == GIB // 2
    step = apply(step.vm, event(DiskCopied, disk_key=2000, bytes_total=GIB, bytes_read=GIB, bytes_written=GIB,
                                zero_bytes_skipped=0, sha256="x", seconds=1.0), 33)  # fmt: skip
    assert step.vm.phase is VmPhase.COPY_DISKS
    assert step.vm.disks[0] == DiskProgress(
        key=2000, file_name="[ds] web/web_0.vmdk", bytes_total=GIB, bytes_done=GIB, completed=True,
        bytes_read=GIB, bytes_written=GIB, bytes_to_read=GIB,
    )  # fmt: skip
    step = apply(step.vm, event(DiskCopied, disk_key=2001, bytes_total=GIB, bytes_read=GIB, bytes_written=GIB,
                                zero_bytes_skipped=0, sha256="y", seconds=1.0), 34)  # fmt: skip
    assert step.vm.phase is VmPhase.CREATE_VM
    [create] = commands(step)
    assert isinstance(create, CreateVm)
    assert create.vm.run, "the source was powered on, so the target runs"

    step = apply(step.vm, event(VmCreated, location="ns/web-01"), 40)
    vm = step.vm
    assert (vm.phase, vm.location, vm.completed_at, vm.started_at) == (VmPhase.COMPLETED, "ns/web-01", at(40), at(0))
    assert [p.name for p in vm.pipeline] == [p.value for p in PIPELINE]
    assert all(p.completed_at is not None for p in vm.pipeline)
    assert vm.pipeline[3].started_at == at(2)
    assert vm.pipeline[3].completed_at == at(30), "WaitForPowerOff lasted until the source was off"
    assert vm.pipeline[-1].started_at == vm.pipeline[-1].completed_at == at(40)


def test_an_already_off_vm_records_the_power_off_phases_with_start_equal_end() -> None:
    vm = machine.start(queued_vm(power_state="poweredOff"), CTX, at(0)).vm
    vm = apply(vm, event(SourcePowerStateRecorded, power_state="poweredOff"), 1).vm
    step = apply(vm, event(SourceVmPoweredOff), 2)
    assert step.vm.phase is VmPhase.CREATE_DATA_VOLUMES
    assert phases_announced(step) == ["WaitForPowerOff", "CreateDataVolumes"]
    wait = step.vm.pipeline[3]
    assert (wait.name, wait.started_at, wait.completed_at) == ("WaitForPowerOff", at(2), at(2))


def test_events_out_of_order_still_reach_the_same_state() -> None:
    vm = machine.start(queued_vm(power_state="poweredOn"), CTX, at(0)).vm
    vm = apply(vm, event(SourceVmPoweredOff), 1).vm
    assert vm.phase is VmPhase.CREATE_DATA_VOLUMES
    assert [p.name for p in vm.pipeline] == [p.value for p in PIPELINE[:5]]
    late = apply(vm, event(SourcePowerOffRequested, method="power_off"), 2)
    assert late.vm == vm and late.messages == ()
    recorded = apply(vm, event(SourcePowerStateRecorded, power_state="suspended"), 3)
    assert recorded.vm.phase is VmPhase.CREATE_DATA_VOLUMES
    assert recorded.vm.source_power_state == "suspended"
    assert recorded.messages == ()


def test_duplicates_backwards_progress_and_foreign_disks_change_nothing() -> None:
    vm = copying(queued_vm())
    vm = apply(vm, event(DiskCopyProgress, disk_key=2000, bytes_done=600, bytes_total=GIB)).vm
    for stale in (
        event(DiskCopyProgress, disk_key=2000, bytes_done=500, bytes_total=GIB),
        event(DiskCopyProgress, disk_key=2000, bytes_done=600, bytes_total=GIB),
        event(DiskCopyProgress, disk_key=9999, bytes_done=700, bytes_total=GIB),
        event(VolumesPrepared, sinks=()),
        event(SourceVmPoweredOff),
    ):
        assert apply(vm, stale).vm == vm
    copied = event(DiskCopied, disk_key=2000, bytes_total=GIB, bytes_read=1, bytes_written=1,
                   zero_bytes_skipped=0, sha256="x", seconds=1.0)  # fmt: skip
    once = apply(vm, copied).vm
    twice = apply(once, copied)
    assert twice.vm == once and twice.messages == ()
    assert apply(once, event(DiskCopyProgress, disk_key=2000, bytes_done=5, bytes_total=GIB)).vm == once
    assert sum(d.completed for d in once.disks) == 1


def test_events_for_queued_or_finished_vms_are_ignored() -> None:
    queued = queued_vm()
    assert apply(queued, event(SourceVmPoweredOff)).vm == queued
    assert apply(queued, failed(CopyDisk)).vm == queued
    done = queued_vm(disks=0)
    done = machine.start(done, CTX, at(0)).vm
    done = apply(done, event(SourceVmPoweredOff)).vm
    done = apply(done, event(VolumesPrepared, sinks=())).vm
    done = apply(done, event(VmCreated, location="ns/web-01")).vm
    assert done.phase is VmPhase.COMPLETED
    for late in (event(VmCreated, location="elsewhere"), failed(CreateVm), event(VmCleanedUp)):
        assert apply(done, late).vm == done
    assert machine.cancel(done, CTX, at(9)).vm == done
    assert machine.start(done, CTX, at(9)).vm == done


def test_a_vm_without_disks_skips_the_copy() -> None:
    vm = machine.start(queued_vm(disks=0, power_state="poweredOff"), CTX, at(0)).vm
    vm = apply(vm, event(SourceVmPoweredOff)).vm
    step = apply(vm, event(VolumesPrepared, sinks=()), 5)
    assert step.vm.phase is VmPhase.CREATE_VM
    assert phases_announced(step) == ["CopyDisks", "CreateVM"]
    [create] = commands(step)
    assert isinstance(create, CreateVm)
    assert not create.vm.run


def test_a_failed_step_fails_the_vm_cleans_up_and_powers_the_source_back_on() -> None:
    vm = copying(queued_vm(power_state="poweredOn"))
    step = apply(vm, failed(CopyDisk, code="source_read_failed", reason="HTTP 503 reading [ds] web/web_0-flat.vmdk"))
    assert step.vm.phase is VmPhase.FAILED
    assert step.vm.error_code == "source_read_failed"
    assert step.vm.reason == "CopyDisks failed: HTTP 503 reading [ds] web/web_0-flat.vmdk"
    assert step.vm.completed_at is not None
    assert step.vm.pipeline[-1].name == "CopyDisks" and step.vm.pipeline[-1].completed_at is None
    kinds = [type(m) for m in commands(step)]
    assert kinds == [VmCancelRequested, CleanupVm, RestoreSourcePowerState]
    restore = commands(step)[-1]
    assert isinstance(restore, RestoreSourcePowerState) and restore.power_state == "poweredOn"
    assert phases_announced(step) == ["Failed"]


def test_a_failure_before_power_off_was_asked_restores_nothing() -> None:
    vm = machine.start(queued_vm(power_state="poweredOff"), CTX, at(0)).vm
    step = apply(vm, failed(PowerOffSourceVm, code="vm_not_found", reason="VM vm-1 is gone"))
    assert [type(m) for m in commands(step)] == [CleanupVm]
    assert step.vm.reason == "StorePowerState failed: VM vm-1 is gone"


def test_cancel_while_copying_cleans_up_then_restores_the_source() -> None:
    vm = copying(queued_vm(power_state="poweredOn"))
    step = machine.cancel(vm, CTX, at(50))
    assert step.vm.phase is VmPhase.CANCELING
    assert [type(m) for m in commands(step)] == [VmCancelRequested, CleanupVm]
    canceling = step.vm
    for late in (
        event(DiskCopied, disk_key=2000, bytes_total=GIB, bytes_read=1, bytes_written=1, zero_bytes_skipped=0,
              sha256="x", seconds=1.0),
        event(DiskCopyProgress, disk_key=2001, bytes_done=GIB, bytes_total=GIB),
        failed(CopyDisk, code="canceled", reason="stopped"),
    ):  # fmt: skip
        assert apply(canceling, late).vm == canceling
    assert machine.cancel(canceling, CTX, at(51)).vm == canceling
    step = apply(canceling, event(VmCleanedUp, removed=("PersistentVolumeClaim ns/web-01-disk-0",)), 52)
    assert step.vm.phase is VmPhase.CANCELED
    assert step.vm.completed_at == at(52)
    assert [type(m) for m in commands(step)] == [RestoreSourcePowerState]


def test_cancel_of_a_queued_vm_ends_it_at_once() -> None:
    step = machine.cancel(queued_vm(), CTX, at(3))
    assert step.vm.phase is VmPhase.CANCELED
    assert commands(step) == []
    assert step.vm.pipeline == ()


def test_a_cleanup_that_fails_after_a_cancel_fails_the_vm() -> None:
    canceling = machine.cancel(copying(queued_vm()), CTX, at(50)).vm
    step = apply(canceling, failed(CleanupVm, code="forbidden", reason="cannot delete PVCs in ns"))
    assert step.vm.phase is VmPhase.FAILED
    assert "cannot delete PVCs in ns" in step.vm.reason
    assert [type(m) for m in commands(step)] == [RestoreSourcePowerState]


def test_missing_sinks_fail_the_vm_with_a_readable_reason() -> None:
    vm = machine.start(queued_vm(), CTX, at(0)).vm
    vm = apply(vm, event(SourceVmPoweredOff)).vm
    step = apply(vm, event(VolumesPrepared, sinks=sinks(vm)[:1]))
    assert step.vm.phase is VmPhase.FAILED
    assert step.vm.error_code == "sink_missing"
    assert "2001 ([ds] web/web_1.vmdk)" in step.vm.reason


def test_a_cancel_waits_for_the_running_writer_step_before_cleaning_up() -> None:
    vm = machine.start(queued_vm(power_state="poweredOff"), CTX, at(0)).vm
    vm = apply(vm, event(SourceVmPoweredOff)).vm
    assert vm.phase is VmPhase.CREATE_DATA_VOLUMES
    step = machine.cancel(vm, CTX, at(5))
    assert step.vm.phase is VmPhase.CANCELING
    assert [type(m) for m in commands(step)] == [VmCancelRequested], "PrepareVolumes is still running"
    canceling = step.vm
    assert apply(canceling, event(VmCleanedUp)).vm == canceling, "no cleanup was asked for yet"
    step = apply(canceling, event(VolumesPrepared, sinks=sinks(canceling)), 6)
    assert step.vm.phase is VmPhase.CANCELING
    assert [type(m) for m in commands(step)] == [CleanupVm], "volumes exist now: remove them"
    step = apply(step.vm, event(VmCleanedUp), 7)
    assert step.vm.phase is VmPhase.CANCELED
    assert commands(step) == [], "the source was off before, so it stays off"


def test_a_cancel_while_creating_the_vm_removes_it_once_it_exists() -> None:
    vm = copying(queued_vm(disks=1))
    vm = apply(vm, event(DiskCopied, disk_key=2000, bytes_total=GIB, bytes_read=GIB, bytes_written=GIB,
                         zero_bytes_skipped=0, sha256="x", seconds=1.0)).vm  # fmt: skip
    assert vm.phase is VmPhase.CREATE_VM
    canceling = machine.cancel(vm, CTX, at(5)).vm
    step = apply(canceling, event(VmCreated, location="ns/web-01"), 6)
    assert (step.vm.phase, step.vm.location) == (VmPhase.CANCELING, "")
    assert [type(m) for m in commands(step)] == [CleanupVm]


def test_a_cancel_during_power_off_restores_the_source_only_after_the_power_off_ended() -> None:
    vm = machine.start(queued_vm(power_state="poweredOn"), CTX, at(0)).vm
    vm = apply(vm, event(SourcePowerStateRecorded, power_state="poweredOn")).vm
    vm = apply(vm, event(SourcePowerOffRequested, method="guest_shutdown")).vm
    canceling = machine.cancel(vm, CTX, at(5)).vm
    assert canceling.awaiting == PowerOffSourceVm.type_tag()
    step = apply(canceling, failed(PowerOffSourceVm, code="shutdown_timeout", reason="guest did not stop"), 6)
    assert [type(m) for m in commands(step)] == [CleanupVm]
    step = apply(step.vm, event(VmCleanedUp), 7)
    assert step.vm.phase is VmPhase.CANCELED
    [restore] = commands(step)
    assert isinstance(restore, RestoreSourcePowerState) and restore.power_state == "poweredOn"


def test_progress_keeps_the_bytes_read_apart_from_the_logical_size_and_they_only_grow() -> None:
    vm = copying(queued_vm())
    sparse = {"disk_key": 2000, "bytes_total": GIB, "bytes_to_read": 5 * 2**20}
    vm = apply(vm, event(DiskCopyProgress, bytes_done=GIB // 2, bytes_read=3 * 2**20, bytes_written=2**20, **sparse)).vm
    late = apply(vm, event(DiskCopyProgress, bytes_done=GIB // 4, bytes_read=2**20, bytes_written=2**20, **sparse)).vm
    older = apply(vm, event(DiskCopyProgress, disk_key=2000, bytes_done=GIB // 2 + 1, bytes_total=GIB)).vm

    disk = vm.disks[0]
    assert (disk.bytes_done, disk.bytes_read, disk.bytes_written, disk.bytes_to_read) == (
        GIB // 2, 3 * 2**20, 2**20, 5 * 2**20)  # fmt: skip
    assert late == vm, "an event out of order moves no count back"
    assert (older.disks[0].bytes_read, older.disks[0].bytes_to_read) == (3 * 2**20, 5 * 2**20), (
        "an event of an older transfer, without read counts, forgets none"
    )
    copied = apply(vm, event(DiskCopied, disk_key=2000, bytes_total=GIB, bytes_read=5 * 2**20, bytes_written=4 * 2**20,
                             zero_bytes_skipped=GIB - 4 * 2**20, sha256="x", seconds=1.0)).vm  # fmt: skip
    assert (copied.disks[0].bytes_read, copied.disks[0].bytes_written) == (5 * 2**20, 4 * 2**20)
