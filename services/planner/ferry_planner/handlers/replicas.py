"""Keeping a replica's copy of the migrations true when another replica changed them.

Every replica follows the planner's bucket; a migration key another replica wrote (a
start or a cancel through its API, or the active replica moving a VM) is taken into this
replica's copy under the migration's lock and announced to this replica's event-stream
clients. The active replica grants slots for a migration another one created.
"""

import logging
from collections.abc import Callable

import msgspec

from ferry_planner.domain.migration_views import vm_view
from ferry_planner.domain.migrations import VmPhase
from ferry_planner.domain.outbox import MIGRATION_ITSELF
from ferry_planner.domain.ports import StoredChange
from ferry_planner.handlers.commit import announce_migration
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.slots import grant_slots
from ferry_shared.errors import TemporaryError

log = logging.getLogger(__name__)


async def take_change_from_elsewhere(ports: PlannerPorts, name: str, adopt: Callable[[], StoredChange | None]) -> None:
    """Apply ``adopt`` (the store taking one key) under the lock of migration ``name``, then announce it."""
    async with ports.guards.migration[name]:
        change = adopt()
        migration = ports.migrations.get(name)
    if change is None or migration is None:
        return
    if change.vm_id == MIGRATION_ITSELF:
        announce_migration(ports, migration)
    elif (vm := migration.vm(change.vm_id)) is not None:
        ports.changes.publish({"kind": "migration_vm", "name": name, "vm": msgspec.to_builtins(vm_view(vm))})
        if vm.phase is VmPhase.COMPLETED:
            ports.revalidation.request()  # its plan's result names it migrated (as commit.announce does)
    if change.created and ports.leadership.is_leader():
        try:
            await grant_slots(ports)
        except TemporaryError as error:
            log.info("slots for migration %s not granted yet: %s", name, error)
