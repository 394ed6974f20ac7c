"""Cancelling VMs of a migration: by id or name, or every unfinished one."""

import logging
from collections.abc import Sequence

from ferry_planner.domain import migration_machine as machine
from ferry_planner.domain.migration_views import MigrationView
from ferry_planner.domain.migrations import Migration, VmMigration
from ferry_planner.handlers.commit import commit, context_of, send_outboxes
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import NotFoundError
from ferry_planner.handlers.migration_queries import migration, require_migration

log = logging.getLogger(__name__)


async def cancel_migration(ports: PlannerPorts, name: str, refs: Sequence[str] = ()) -> MigrationView:
    """Cancel the named VMs (by id or name), or every unfinished one when none is named."""
    async with ports.guards.migration[name]:
        await send_outboxes(ports, name)
        current = require_migration(ports, name)
        chosen = _choose(current, refs)
        ctx, now = context_of(current), ports.clock()
        steps = [step for vm in chosen if (step := machine.cancel(vm, ctx, now)).vm != vm]
        if steps:
            log.info("migration %s: cancelling %s", name, ", ".join(s.vm.vm_id for s in steps))
            await commit(ports, current, steps)
    return migration(ports, name)


def _choose(migration: Migration, refs: Sequence[str]) -> list[VmMigration]:
    if not refs:
        return [vm for vm in migration.vms if not vm.finished]
    chosen: list[VmMigration] = []
    for ref in refs:
        by_id = [vm for vm in migration.vms if vm.vm_id == ref]
        matches = by_id or [vm for vm in migration.vms if ref in (vm.vm_name, vm.target_name)]
        if not matches:
            raise NotFoundError(
                "VM", ref, message=f"VM '{ref}' is not part of migration '{migration.name}' (give its id or name)"
            )
        chosen += [vm for vm in matches if vm not in chosen]
    return chosen
