"""What an active VM waits for, and when waiting becomes a failure.

Every active phase waits for one service's answer to one command; a VM that has heard
nothing (no answer, no progress) for the plan's step deadline fails with a reason that
names the service, and is cleaned up and its source restored like any other failure.
Pure, no I/O.
"""

from datetime import datetime, timedelta

import msgspec

from ferry_planner.domain.migrations import VmMigration, VmPhase
from ferry_shared import subjects

WAITS_FOR: dict[VmPhase, tuple[str, str]] = {
    VmPhase.STARTED: (subjects.INVENTORY, "PowerOffSourceVm"),
    VmPhase.STORE_POWER_STATE: (subjects.INVENTORY, "PowerOffSourceVm"),
    VmPhase.POWER_OFF_SOURCE: (subjects.INVENTORY, "PowerOffSourceVm"),
    VmPhase.WAIT_FOR_POWER_OFF: (subjects.INVENTORY, "PowerOffSourceVm"),
    VmPhase.CREATE_DATA_VOLUMES: (subjects.KUBEVIRT_WRITER, "PrepareVolumes"),
    VmPhase.COPY_DISKS: (subjects.TRANSFER, "CopyDisk"),
    VmPhase.CREATE_VM: (subjects.KUBEVIRT_WRITER, "CreateVm"),
}
"""The service (and command) whose answer each active phase waits for."""

_AWAITED_BY_TYPE = {
    "ferry.inventory.power_off_source_vm.v1": (subjects.INVENTORY, "PowerOffSourceVm"),
    "ferry.kubevirt_writer.prepare_volumes.v1": (subjects.KUBEVIRT_WRITER, "PrepareVolumes"),
    "ferry.kubevirt_writer.create_vm.v1": (subjects.KUBEVIRT_WRITER, "CreateVm"),
}


class Waiting(msgspec.Struct, frozen=True, kw_only=True):
    """Whose answer a VM waits for, and since when it heard nothing."""

    service: str
    step: str
    since: datetime


def waiting_for(vm: VmMigration) -> Waiting | None:
    """What ``vm`` waits for now; None when it waits for nobody (queued or finished)."""
    if vm.heard_at is None:
        return None
    if vm.phase is VmPhase.CANCELING:
        service, step = _AWAITED_BY_TYPE.get(vm.awaiting, (subjects.KUBEVIRT_WRITER, "CleanupVm"))
        return Waiting(service=service, step=step, since=vm.heard_at)
    if vm.phase not in WAITS_FOR:
        return None
    service, step = WAITS_FOR[vm.phase]
    return Waiting(service=service, step=step, since=vm.heard_at)


def deadline_of(vm: VmMigration, patience: timedelta) -> datetime | None:
    """When ``vm`` gives up waiting, if it waits."""
    waiting = waiting_for(vm)
    return waiting.since + patience if waiting else None


def silence_reason(vm: VmMigration, waiting: Waiting, patience: timedelta) -> str:
    minutes = patience.total_seconds() / 60
    span = f"{minutes:g} minutes" if minutes >= 1 else f"{patience.total_seconds():g} seconds"
    doing = "removing the partial target objects after the cancel" if vm.phase is VmPhase.CANCELING else vm.phase.value
    return (
        f"{doing} got no answer from the {waiting.service} service ({waiting.step}) for {span}; "
        f"check that the {waiting.service} service is running and can reach NATS, then run the plan again"
    )
