"""The per-source-host concurrency budget, across every running migration.

A VM holds one slot of its source ESXi host from ``Started`` until it finishes
(``Canceling`` still holds it: its copies may not have stopped yet). Queued VMs start
first come, first served: older migrations first, then plan order. Each VM left
waiting gets a reason a person can read. Pure, no I/O.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ferry_planner.domain.migrations import Migration, VmMigration, VmPhase

VmRef = tuple[str, str]
"""(migration name, VM id)."""


@dataclass(frozen=True)
class Schedule:
    """Which queued VMs start now, and why each of the others waits."""

    start: tuple[VmRef, ...] = ()
    waiting: dict[VmRef, str] = field(default_factory=dict)


def _host_label(vm: VmMigration) -> str:
    return vm.host or vm.host_key or "unknown host"


def waiting_reason(vm: VmMigration, running: int, budget: int) -> str:
    return f"waiting for a slot on host {_host_label(vm)} ({running} of {budget} running)"


def schedule(migrations: Iterable[Migration], budget: int) -> Schedule:
    """Grant free slots (at most ``budget`` VMs per source host) to queued VMs in order."""
    if budget < 1:
        raise ValueError(f"the per-host budget must be at least 1, got {budget}")
    ordered = sorted(migrations, key=lambda m: (m.created_at, m.name))
    running: Counter[str] = Counter(vm.host_key for m in ordered for vm in m.vms if vm.holds_slot)
    queued = [(m.name, vm) for m in ordered for vm in m.vms if vm.phase is VmPhase.QUEUED]
    start: list[VmRef] = []
    left: list[tuple[str, VmMigration]] = []
    for name, vm in queued:
        if running[vm.host_key] < budget:
            running[vm.host_key] += 1
            start.append((name, vm.vm_id))
        else:
            left.append((name, vm))
    waiting = {(name, vm.vm_id): waiting_reason(vm, running[vm.host_key], budget) for name, vm in left}
    return Schedule(start=tuple(start), waiting=waiting)
