"""What the planner does on start and in the background: send what a crash left unsent,
end migrations a crash left unfinished, tell the inventory again about provider changes a
crash left untold, grant free slots, and store coalesced progress."""

import logging

from ferry_planner.domain.outbox import Commit, finish_if_done
from ferry_planner.handlers.commit import announce_migration, send_every_outbox, send_outboxes
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.providers import reconnect_lagging_providers
from ferry_planner.handlers.slots import grant_slots
from ferry_shared.errors import TemporaryError

log = logging.getLogger(__name__)


async def resume(ports: PlannerPorts) -> None:
    """Carry on from the bucket after a start: every stored outbox is sent, a migration
    whose VMs all ended gets its end, a provider change is told to the inventory, and
    queued VMs get the slots that are free."""
    await send_every_outbox(ports)
    await reconnect_lagging_providers(ports)
    for migration in ports.migrations.all():
        async with ports.guards.migration[migration.name]:
            ended, outboxes = finish_if_done(migration, ports.clock())
            if not outboxes:
                continue
            change = Commit(before=migration, after=ended, outboxes=outboxes)
            await ports.migrations.store(change)
            await send_outboxes(ports, migration.name)
            announce_migration(ports, ended)
    await grant_slots(ports)


async def store_progress(ports: PlannerPorts) -> None:
    """Store the disk progress kept only in memory (every half second, and on stop)."""
    for name in ports.migrations.staged():
        async with ports.guards.migration[name]:
            try:
                await ports.migrations.flush(name)
            except TemporaryError as error:
                log.warning("progress of migration %s not stored: %s", name, error)
