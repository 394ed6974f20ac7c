"""The per-VM cold-migration state machine: (VM state, what happened) → (new state, messages).

Each function takes a :class:`VmMigration` and something that happened (a slot was
granted, an event arrived, the user cancelled) and returns a :class:`Step`: the VM's
new state and the commands and events to publish, with deterministic message ids so
a repeated publish deduplicates. Pure, no I/O; time comes in as ``now``.

The chain (see ``ferry_shared.migrations``)::

    Queued ─slot─▶ Started ─▶ StorePowerState ──SourcePowerStateRecorded──▶ PowerOffSource
      ──SourcePowerOffRequested──▶ WaitForPowerOff ──SourceVmPoweredOff──▶ CreateDataVolumes
      ──VolumesPrepared──▶ CopyDisks ──DiskCopied (every disk)──▶ CreateVM ──VmCreated──▶ Completed

Events are handled concurrently and may arrive out of order or twice, so every
transition is tolerant: an event that proves a later phase was reached moves the VM
there, recording the phases in between with start = end (a VM that was already off
never gets ``SourcePowerOffRequested``); an event for an earlier phase, a disk already
copied, progress that would go backwards, or anything about a finished VM changes
nothing. ``MessageFailed`` about an active VM fails it (``CleanupVm``, and
``RestoreSourcePowerState`` when the migration powered the source off); cancelling an
active VM makes it ``Canceling`` until the writer reports ``VmCleanedUp``. A VM
cancelled while a power-off, ``PrepareVolumes`` or ``CreateVm`` is still running waits
for that step's answer before it asks for the cleanup, so nothing is created (or
powered off) after it was cleaned up (or restored).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from ferry_planner.domain.migrations import ACTIVE, PIPELINE, DiskProgress, PhaseRecord, VmMigration, VmPhase
from ferry_planner.domain.waiting import silence_reason, waiting_for
from ferry_shared.inventory import PowerState
from ferry_shared.messages import Message, MessageFailed
from ferry_shared.migrations import (
    CleanupVm,
    CopyDisk,
    CreateVm,
    DiskCopied,
    DiskCopyProgress,
    PowerOffSourceVm,
    PrepareVolumes,
    RestoreSourcePowerState,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourcePowerStateRestored,
    SourceVmPoweredOff,
    StepEvent,
    VmCancelRequested,
    VmCleanedUp,
    VmCreated,
    VmPhaseChanged,
    VolumesPrepared,
    step_fields,
)
from ferry_shared.providers import ProviderSpec

replace = msgspec.structs.replace


@dataclass(frozen=True)
class MachineContext:
    """What every step needs besides the VM: its migration and the two providers."""

    migration: str
    plan: str
    source: ProviderSpec
    target: ProviderSpec


@dataclass(frozen=True)
class Step:
    """The outcome of one transition. ``progress_only`` marks a change of disk bytes
    alone (the planner may coalesce storing those)."""

    vm: VmMigration
    messages: tuple[Message, ...] = ()
    progress_only: bool = False
    entered: tuple[VmPhase, ...] = ()


def _unchanged(vm: VmMigration) -> Step:
    return Step(vm=vm)


def _phase_changed(vm: VmMigration, phase: VmPhase, ctx: MachineContext, reason: str = "") -> VmPhaseChanged:
    return VmPhaseChanged(
        **step_fields(ctx.migration, vm.vm_id, "phase", phase.value),
        plan=ctx.plan,
        vm_name=vm.vm_name,
        phase=phase.value,
        reason=reason,
    )


def _close_open(pipeline: tuple[PhaseRecord, ...], now: datetime) -> tuple[PhaseRecord, ...]:
    if pipeline and pipeline[-1].completed_at is None:
        return (*pipeline[:-1], replace(pipeline[-1], completed_at=now))
    return pipeline


def _walk(vm: VmMigration, to: VmPhase, now: datetime) -> tuple[VmMigration, tuple[VmPhase, ...]]:
    """Enter pipeline phase ``to``, recording every phase skipped on the way with
    start = end; ``Completed`` is closed as soon as it is entered."""
    start = PIPELINE.index(vm.phase) + 1 if vm.phase in PIPELINE else 0
    entered = PIPELINE[start : PIPELINE.index(to) + 1]
    pipeline = vm.pipeline
    for phase in entered:
        pipeline = (*_close_open(pipeline, now), PhaseRecord(name=phase.value, started_at=now))
    if to is VmPhase.COMPLETED:
        pipeline = _close_open(pipeline, now)
    return replace(vm, phase=to, pipeline=pipeline), entered


def _advance(
    vm: VmMigration, to: VmPhase, ctx: MachineContext, now: datetime, messages: Iterable[Message] = ()
) -> Step:
    moved, entered = _walk(vm, to, now)
    changes = tuple(_phase_changed(moved, phase, ctx) for phase in entered)
    return Step(vm=moved, messages=(*changes, *messages), entered=entered)


def _reached(vm: VmMigration, phase: VmPhase) -> bool:
    """True when ``vm`` is active and at ``phase`` or beyond it."""
    return vm.phase in ACTIVE and PIPELINE.index(vm.phase) >= PIPELINE.index(phase)


def _before(vm: VmMigration, phase: VmPhase) -> bool:
    """True when ``vm`` is active and has not yet reached ``phase``."""
    return vm.phase in ACTIVE and PIPELINE.index(vm.phase) < PIPELINE.index(phase)


# ── commands ────────────────────────────────────────────────────────────────────────


def _restore(vm: VmMigration, ctx: MachineContext) -> tuple[Message, ...]:
    """``RestoreSourcePowerState`` when this migration asked to power off a source that was not off."""
    if not vm.power_off_requested or vm.source_power_state in ("", PowerState.OFF):
        return ()
    return (
        RestoreSourcePowerState(
            **step_fields(ctx.migration, vm.vm_id, "restore_source_power_state"),
            source=ctx.source,
            power_state=vm.source_power_state,
        ),
    )


def _cleanup(vm: VmMigration, ctx: MachineContext) -> tuple[Message, ...]:
    if vm.blueprint is None:
        return ()
    return (
        CleanupVm(
            **step_fields(ctx.migration, vm.vm_id, "cleanup_vm"),
            target=ctx.target,
            vm=vm.blueprint,
        ),
    )


def _stop_copies(vm: VmMigration, ctx: MachineContext) -> VmCancelRequested:
    return VmCancelRequested(**step_fields(ctx.migration, vm.vm_id, "cancel_requested"))


def _create_vm(vm: VmMigration, ctx: MachineContext) -> CreateVm:
    assert vm.blueprint is not None  # a VM without a blueprint never starts
    blueprint = replace(vm.blueprint, run=vm.source_power_state == PowerState.ON)
    return CreateVm(
        **step_fields(ctx.migration, vm.vm_id, "create_vm"),
        target=ctx.target,
        vm=blueprint,
    )


# ── transitions ─────────────────────────────────────────────────────────────────────


def start(vm: VmMigration, ctx: MachineContext, now: datetime) -> Step:
    """A slot on the source host was granted: record the power state and power off."""
    if vm.phase is not VmPhase.QUEUED or vm.blueprint is None:
        return _unchanged(vm)
    power_off = PowerOffSourceVm(
        **step_fields(ctx.migration, vm.vm_id, "power_off_source_vm"),
        source=ctx.source,
    )
    began = replace(vm, started_at=now, reason="", power_off_requested=True)
    return _advance(began, VmPhase.STORE_POWER_STATE, ctx, now, (power_off,))


def fail(vm: VmMigration, ctx: MachineContext, now: datetime, *, code: str, reason: str) -> Step:
    """Fail an active VM: remove what was created for it and restore the source."""
    if vm.phase not in ACTIVE and vm.phase is not VmPhase.CANCELING:
        return _unchanged(vm)
    restore = _restore(vm, ctx)
    failed = replace(
        vm, phase=VmPhase.FAILED, reason=reason, error_code=code, completed_at=now, restore_pending=bool(restore)
    )
    messages: list[Message] = [_phase_changed(failed, VmPhase.FAILED, ctx, reason)]
    if vm.phase is VmPhase.COPY_DISKS:
        messages.append(_stop_copies(vm, ctx))
    if vm.phase is not VmPhase.CANCELING:  # a cancelled VM's cleanup was already asked for
        messages += _cleanup(vm, ctx)
    messages += restore
    return Step(vm=failed, messages=tuple(messages), entered=(VmPhase.FAILED,))


def time_out(vm: VmMigration, ctx: MachineContext, now: datetime, patience: timedelta) -> Step:
    """Fail a VM that heard nothing about the step it waits for in ``patience``."""
    waiting = waiting_for(vm)
    if waiting is None or waiting.since + patience > now:
        return _unchanged(vm)
    return fail(vm, ctx, now, code="step_timeout", reason=silence_reason(vm, waiting, patience))


_IN_FLIGHT = {
    VmPhase.STORE_POWER_STATE: PowerOffSourceVm.type_tag(),
    VmPhase.POWER_OFF_SOURCE: PowerOffSourceVm.type_tag(),
    VmPhase.WAIT_FOR_POWER_OFF: PowerOffSourceVm.type_tag(),
    VmPhase.CREATE_DATA_VOLUMES: PrepareVolumes.type_tag(),
    VmPhase.CREATE_VM: CreateVm.type_tag(),
}
"""The command still running in each phase whose end a cancel waits for (copies are stopped instead)."""


def cancel(vm: VmMigration, ctx: MachineContext, now: datetime) -> Step:
    """The user cancelled: a queued VM ends at once; an active one stops its copies and,
    once no other step of it is running, has its target objects removed; a finished or
    cancelling VM stays as it is."""
    if vm.phase is VmPhase.QUEUED:
        canceled = replace(vm, phase=VmPhase.CANCELED, reason="canceled before it started", completed_at=now)
        return Step(
            vm=canceled, messages=(_phase_changed(canceled, VmPhase.CANCELED, ctx),), entered=(VmPhase.CANCELED,)
        )
    if vm.phase not in ACTIVE:
        return _unchanged(vm)
    awaiting = _IN_FLIGHT.get(vm.phase, "")
    canceling = replace(vm, phase=VmPhase.CANCELING, reason="canceled by the user", awaiting=awaiting)
    messages: tuple[Message, ...] = (_phase_changed(canceling, VmPhase.CANCELING, ctx), _stop_copies(vm, ctx))
    if not awaiting:
        messages += _cleanup(vm, ctx)
    return Step(vm=canceling, messages=messages, entered=(VmPhase.CANCELING,))


_ANSWERS: dict[str, tuple[type[StepEvent], ...]] = {
    PowerOffSourceVm.type_tag(): (SourceVmPoweredOff,),
    PrepareVolumes.type_tag(): (VolumesPrepared,),
    CreateVm.type_tag(): (VmCreated,),
}


def _answered(vm: VmMigration, event: StepEvent | MessageFailed) -> bool:
    """True when ``event`` ends the step a cancelling VM waits for (done or failed)."""
    if isinstance(event, MessageFailed):
        return event.failed_type == vm.awaiting
    return isinstance(event, _ANSWERS.get(vm.awaiting, ()))


def on_event(vm: VmMigration, event: StepEvent | MessageFailed, ctx: MachineContext, now: datetime) -> Step:
    """Apply one event about this VM (stale, duplicate or late ones change nothing)."""
    if vm.finished:
        return _restore_answered(vm, event)
    if vm.phase is VmPhase.CANCELING and vm.awaiting and _answered(vm, event):
        ready = replace(vm, awaiting="")
        return Step(vm=ready, messages=_cleanup(ready, ctx))
    return _dispatch(vm, event, ctx, now)


def _dispatch(vm: VmMigration, event: StepEvent | MessageFailed, ctx: MachineContext, now: datetime) -> Step:
    match event:
        case SourcePowerStateRecorded():
            return _power_state_recorded(vm, event, ctx, now)
        case SourcePowerOffRequested():
            if _before(vm, VmPhase.WAIT_FOR_POWER_OFF):
                return _advance(vm, VmPhase.WAIT_FOR_POWER_OFF, ctx, now)
        case SourceVmPoweredOff():
            return _powered_off(vm, ctx, now)
        case VolumesPrepared():
            return _volumes_prepared(vm, event, ctx, now)
        case DiskCopyProgress():
            return _progress(vm, event)
        case DiskCopied():
            return _disk_copied(vm, event, ctx, now)
        case VmCreated():
            if vm.phase is VmPhase.CREATE_VM:
                return _advance(replace(vm, location=event.location, completed_at=now), VmPhase.COMPLETED, ctx, now)
        case VmCleanedUp():
            return _cleaned_up(vm, ctx, now)
        case MessageFailed():
            return _message_failed(vm, event, ctx, now)
    return _unchanged(vm)


def _power_state_recorded(vm: VmMigration, event: SourcePowerStateRecorded, ctx: MachineContext, now: datetime) -> Step:
    if vm.phase not in ACTIVE and vm.phase is not VmPhase.CANCELING:
        return _unchanged(vm)
    recorded = (
        vm
        if vm.source_power_recorded
        else replace(vm, source_power_state=event.power_state, source_power_recorded=True)
    )
    if _before(recorded, VmPhase.POWER_OFF_SOURCE):
        return _advance(recorded, VmPhase.POWER_OFF_SOURCE, ctx, now)
    return Step(vm=recorded)


def _powered_off(vm: VmMigration, ctx: MachineContext, now: datetime) -> Step:
    if not _before(vm, VmPhase.CREATE_DATA_VOLUMES):
        return _unchanged(vm)
    assert vm.blueprint is not None
    prepare = PrepareVolumes(
        **step_fields(ctx.migration, vm.vm_id, "prepare_volumes"),
        target=ctx.target,
        vm=vm.blueprint,
    )
    return _advance(vm, VmPhase.CREATE_DATA_VOLUMES, ctx, now, (prepare,))


def _volumes_prepared(vm: VmMigration, event: VolumesPrepared, ctx: MachineContext, now: datetime) -> Step:
    if vm.phase is not VmPhase.CREATE_DATA_VOLUMES:
        return _unchanged(vm)
    sinks = {sink.disk_key: sink for sink in event.sinks}
    missing = [disk for disk in vm.source_disks if disk.key not in sinks]
    if missing:
        names = ", ".join(f"{disk.key} ({disk.file_name})" for disk in missing)
        reason = f"CreateDataVolumes failed: no volume was prepared for disk {names}"
        return fail(vm, ctx, now, code="sink_missing", reason=reason)
    prepared = replace(vm, sinks=event.sinks)
    if not vm.source_disks:
        return _advance(prepared, VmPhase.CREATE_VM, ctx, now, (_create_vm(prepared, ctx),))
    copies = tuple(
        CopyDisk(
            **step_fields(ctx.migration, vm.vm_id, "copy_disk", disk.key),
            source=ctx.source,
            disk=disk,
            sink=sinks[disk.key],
        )
        for disk in vm.source_disks
    )
    return _advance(prepared, VmPhase.COPY_DISKS, ctx, now, copies)


def _with_disk(vm: VmMigration, updated: DiskProgress) -> VmMigration:
    return replace(vm, disks=tuple(updated if disk.key == updated.key else disk for disk in vm.disks))


def _disk(vm: VmMigration, key: int) -> DiskProgress | None:
    return next((disk for disk in vm.disks if disk.key == key), None)


def _progress(vm: VmMigration, event: DiskCopyProgress) -> Step:
    disk = _disk(vm, event.disk_key)
    if vm.phase is not VmPhase.COPY_DISKS or disk is None or disk.completed:
        return _unchanged(vm)
    total = event.bytes_total if event.bytes_total > 0 else disk.bytes_total
    done = max(disk.bytes_done, min(event.bytes_done, total))
    updated = replace(
        disk,
        bytes_done=done,
        bytes_total=total,
        bytes_read=_grown(disk.bytes_read, event.bytes_read),
        bytes_written=_grown(disk.bytes_written, event.bytes_written),
        bytes_to_read=event.bytes_to_read if event.bytes_to_read is not None else disk.bytes_to_read,
    )
    if updated == disk:
        return _unchanged(vm)
    return Step(vm=_with_disk(vm, updated), progress_only=True)


def _grown(known: int | None, reported: int | None) -> int | None:
    """A byte counter that only grows (events may arrive out of order); None while nothing reported it."""
    if reported is None:
        return known
    return reported if known is None else max(known, reported)


def _disk_copied(vm: VmMigration, event: DiskCopied, ctx: MachineContext, now: datetime) -> Step:
    disk = _disk(vm, event.disk_key)
    if vm.phase is not VmPhase.COPY_DISKS or disk is None or disk.completed:
        return _unchanged(vm)
    total = event.bytes_total if event.bytes_total > 0 else disk.bytes_total
    copied = _with_disk(
        vm,
        replace(
            disk,
            bytes_done=total,
            bytes_total=total,
            completed=True,
            bytes_read=event.bytes_read,
            bytes_written=event.bytes_written,
            bytes_to_read=disk.bytes_to_read if disk.bytes_to_read is not None else event.bytes_read,
        ),
    )
    if not all(d.completed for d in copied.disks):
        return Step(vm=copied)
    return _advance(copied, VmPhase.CREATE_VM, ctx, now, (_create_vm(copied, ctx),))


def _cleaned_up(vm: VmMigration, ctx: MachineContext, now: datetime) -> Step:
    if vm.phase is not VmPhase.CANCELING or vm.awaiting:
        return _unchanged(vm)
    restore = _restore(vm, ctx)
    canceled = replace(vm, phase=VmPhase.CANCELED, completed_at=now, restore_pending=bool(restore))
    messages = (_phase_changed(canceled, VmPhase.CANCELED, ctx, vm.reason), *restore)
    return Step(vm=canceled, messages=messages, entered=(VmPhase.CANCELED,))


def _restore_answered(vm: VmMigration, event: StepEvent | MessageFailed) -> Step:
    """A finished VM hears only whether its source was powered back on (a failure is added to its reason)."""
    if not vm.restore_pending:
        return _unchanged(vm)
    if isinstance(event, SourcePowerStateRestored):
        return Step(vm=replace(vm, restore_pending=False))
    if isinstance(event, MessageFailed) and event.failed_type == RESTORE_TYPE:
        reason = f"{vm.reason}; the source VM could not be powered back on: {event.reason}"
        return Step(vm=replace(vm, restore_pending=False, reason=reason.lstrip("; ")))
    return _unchanged(vm)


CLEANUP_TYPE = CleanupVm.type_tag()
RESTORE_TYPE = RestoreSourcePowerState.type_tag()


def _message_failed(vm: VmMigration, event: MessageFailed, ctx: MachineContext, now: datetime) -> Step:
    if event.failed_type == RESTORE_TYPE:
        return _unchanged(vm)  # the VM already ended; restoring the source is best effort
    if vm.phase is VmPhase.CANCELING:
        if event.failed_type != CLEANUP_TYPE:
            return _unchanged(vm)  # a step stopped by the cancel
        reason = f"removing the partial target objects after the cancel failed: {event.reason}"
        return fail(vm, ctx, now, code=event.error_code, reason=reason)
    if vm.phase not in ACTIVE:
        return _unchanged(vm)
    return fail(vm, ctx, now, code=event.error_code, reason=f"{vm.phase.value} failed: {event.reason}")
