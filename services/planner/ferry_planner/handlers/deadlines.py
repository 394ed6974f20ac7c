"""Giving up on silence: a VM that heard nothing about the step it waits for within the
step deadline fails, naming the service it waited for (then is cleaned up and restored)."""

import logging
from datetime import datetime, timedelta

from ferry_planner.domain import migration_machine as machine
from ferry_planner.domain.migrations import MigrationPhase
from ferry_planner.domain.waiting import deadline_of
from ferry_planner.handlers.commit import commit, context_of
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.slots import grant_slots

log = logging.getLogger(__name__)


async def expire_silent_vms(ports: PlannerPorts) -> datetime | None:
    """Fail every VM whose wait outlasted the deadline; return when the next one would."""
    patience = timedelta(seconds=ports.step_deadline)
    freed = False
    for name in sorted(m.name for m in ports.migrations.all() if m.phase is MigrationPhase.RUNNING):
        async with ports.guards.migration[name]:
            migration = ports.migrations.get(name)
            if migration is None:
                continue
            ctx, now = context_of(migration), ports.clock()
            steps = [step for vm in migration.vms if (step := machine.time_out(vm, ctx, now, patience)).vm != vm]
            if steps:
                log.warning("migration %s: %s heard nothing for %s", name, ", ".join(s.vm.vm_id for s in steps),
                            patience)  # fmt: skip
                await commit(ports, migration, steps)
                freed = True
    if freed:
        await grant_slots(ports)
    deadlines = [
        deadline
        for migration in ports.migrations.all()
        for vm in migration.vms
        if (deadline := deadline_of(vm, patience)) is not None
    ]
    return min(deadlines, default=None)
