"""Granting slots: start the queued VMs that fit their source host's budget, and tell the
others why they wait (the budget itself is :mod:`ferry_planner.domain.scheduling`)."""

import msgspec

from ferry_planner.domain import migration_machine as machine
from ferry_planner.domain.migration_machine import Step
from ferry_planner.domain.migrations import MigrationPhase, VmPhase
from ferry_planner.domain.scheduling import VmRef, schedule
from ferry_planner.handlers.commit import commit, context_of
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.vm_traces import new_vm_trace


async def grant_slots(ports: PlannerPorts) -> None:
    """Start every queued VM a slot is free for, across all running migrations."""
    async with ports.guards.scheduling:
        while True:
            running = [m for m in ports.migrations.all() if m.phase is MigrationPhase.RUNNING]
            plan = schedule(running, ports.max_vms_per_host)
            starts = set(plan.start)
            missed = False
            for name in sorted({ref[0] for ref in (*plan.start, *plan.waiting)}):
                async with ports.guards.migration[name]:
                    missed |= await _grant(ports, name, starts, plan.waiting)
            if not missed:
                return


async def _grant(ports: PlannerPorts, name: str, starts: set[VmRef], waiting: dict[VmRef, str]) -> bool:
    """Apply one migration's part of a schedule; True when a VM to start had left the queue meanwhile."""
    migration = ports.migrations.get(name)
    if migration is None:
        return False
    ctx, now = context_of(migration), ports.clock()
    steps: list[Step] = []
    missed = False
    for vm in migration.vms:
        ref = (name, vm.vm_id)
        if vm.phase is not VmPhase.QUEUED:
            missed |= ref in starts
        elif ref in starts:
            traced = msgspec.structs.replace(vm, trace_parent=new_vm_trace(name, vm))
            steps.append(machine.start(traced, ctx, now))
        elif ref in waiting and vm.reason != waiting[ref]:
            steps.append(Step(vm=msgspec.structs.replace(vm, reason=waiting[ref])))
    if steps:
        await commit(ports, migration, steps)
    return missed
