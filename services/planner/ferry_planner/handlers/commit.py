"""The one way a migration changes: store the change with its outboxes, send them, announce it.

Every use case that moves a VM (a slot granted, an event applied, a cancel) ends here,
holding the migration's lock. The change and the messages it must send are stored
first, in one write per VM (:mod:`ferry_planner.domain.outbox`); then the messages are
published and their outboxes cleared; then the change goes to the server-sent-events
stream. A crash anywhere leaves either nothing stored (the event that caused the
change is redelivered) or the outboxes stored (sent on the next change of that
migration, or on start).
"""

import logging
from collections.abc import Sequence

import msgspec

from ferry_planner.domain.migration_machine import MachineContext, Step
from ferry_planner.domain.migration_views import migration_view, vm_view
from ferry_planner.domain.migrations import Migration, VmPhase
from ferry_planner.domain.outbox import Commit, commit_of
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.vm_traces import within_vm_trace
from ferry_shared.errors import TemporaryError

log = logging.getLogger(__name__)


def context_of(migration: Migration) -> MachineContext:
    return MachineContext(
        migration=migration.name, plan=migration.plan, source=migration.source, target=migration.target
    )


async def commit(ports: PlannerPorts, before: Migration, steps: Sequence[Step]) -> Commit:
    """Apply ``steps`` to ``before`` for good (the migration's lock held)."""
    change = commit_of(before, steps, ports.clock())
    if change.progress_only:
        ports.migrations.stage(change.after)
    else:
        try:
            await ports.migrations.store(change)
        finally:  # what did reach the bucket is sent, even when the rest raced another writer
            await send_outboxes(ports, before.name)
    announce(ports, change)
    return change


async def send_outboxes(ports: PlannerPorts, name: str) -> None:
    """Publish every stored, unsent outbox of migration ``name``, in the VM's trace (lock held)."""
    for box in ports.migrations.unsent():
        if box.migration != name:
            continue
        migration = ports.migrations.get(name)
        vm = migration.vm(box.vm_id) if migration else None
        for message in box.messages:
            if vm is None:
                await ports.publisher.publish(message)
                continue
            with within_vm_trace(name, vm):
                await ports.publisher.publish(message)
        await ports.migrations.sent(name, box)


async def send_every_outbox(ports: PlannerPorts) -> None:
    """Publish what every migration stored but had not sent (on start, after a crash)."""
    for name in sorted({box.migration for box in ports.migrations.unsent()}):
        async with ports.guards.migration[name]:
            try:
                await send_outboxes(ports, name)
            except TemporaryError as error:
                log.warning("messages of migration %s not sent yet: %s", name, error)


def announce(ports: PlannerPorts, change: Commit) -> None:
    """Log the change and put it on the server-sent-events stream."""
    after = change.after
    for vm_id in change.changed_vms:
        vm = after.vm(vm_id)
        if vm is None:
            continue
        if entered := change.entered.get(vm_id):
            log.info("migration %s VM %s: %s", after.name, vm_id, " → ".join(p.value for p in entered))
        ports.changes.publish({"kind": "migration_vm", "name": after.name, "vm": msgspec.to_builtins(vm_view(vm))})
    if any(VmPhase.COMPLETED in entered for entered in change.entered.values()):
        ports.revalidation.request()  # its target VM now exists, and is the plan's own
    if after.phase is not change.before.phase:
        log.info("migration %s %s", after.name, after.phase.value)
        announce_migration(ports, after)


def announce_migration(ports: PlannerPorts, migration: Migration) -> None:
    view = msgspec.to_builtins(migration_view(migration))
    ports.changes.publish({"kind": "migration", "name": migration.name, "migration": view})
