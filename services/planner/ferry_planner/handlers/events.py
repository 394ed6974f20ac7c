"""Applying what other services report: each step event or failure moves one VM's machine."""

import functools
import logging
from collections.abc import Callable
from datetime import datetime

from ferry_planner.domain import migration_machine as machine
from ferry_planner.domain.migration_machine import MachineContext, Step
from ferry_planner.domain.migrations import VmMigration
from ferry_planner.handlers.commit import commit, context_of, send_outboxes
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.slots import grant_slots
from ferry_shared.bus.consumer import Handler, HandlerTable
from ferry_shared.bus.delivery import Delivery
from ferry_shared.messages import Message, MessageFailed
from ferry_shared.migrations import (
    DiskCopied,
    DiskCopyProgress,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourcePowerStateRestored,
    SourceVmPoweredOff,
    StepEvent,
    VmCleanedUp,
    VmCreated,
    VolumesPrepared,
)

log = logging.getLogger(__name__)

Transition = Callable[[VmMigration, MachineContext, datetime], Step]

STEP_EVENTS: tuple[type[StepEvent], ...] = (
    SourcePowerStateRecorded,
    SourcePowerOffRequested,
    SourceVmPoweredOff,
    SourcePowerStateRestored,
    VolumesPrepared,
    DiskCopyProgress,
    DiskCopied,
    VmCreated,
    VmCleanedUp,
)


async def on_step_event(event: StepEvent, delivery: Delivery, *, ports: PlannerPorts) -> None:
    """A step of a VM was done (or made progress)."""
    await apply(ports, event.migration, event.vm_id, lambda vm, ctx, now: machine.on_event(vm, event, ctx, now))


async def on_message_failed(event: MessageFailed, delivery: Delivery, *, ports: PlannerPorts) -> None:
    """A step of a VM failed for good (failures outside migrations are not the planner's)."""
    step = event.about
    if step is None:
        return
    log.warning("migration %s VM %s: %s failed in %s (%s: %s)", step.migration, step.vm_id, event.failed_type,
                event.service, event.error_code, event.reason)  # fmt: skip
    await apply(ports, step.migration, step.vm_id, lambda vm, ctx, now: machine.on_event(vm, event, ctx, now))


async def apply(ports: PlannerPorts, name: str, vm_id: str, transition: Transition) -> None:
    """Run one transition on one VM; grant slots when it gave one back."""
    async with ports.guards.migration[name]:
        await send_outboxes(ports, name)  # what an earlier change stored but could not send
        migration = ports.migrations.get(name)
        vm = migration.vm(vm_id) if migration else None
        if migration is None or vm is None:
            log.debug("event for unknown migration VM %s/%s ignored", name, vm_id)
            return
        step = transition(vm, context_of(migration), ports.clock())
        if step.vm == vm:
            return
        await commit(ports, migration, [step])
    if vm.holds_slot and not step.vm.holds_slot:
        await grant_slots(ports)


def event_handlers(ports: PlannerPorts) -> HandlerTable:
    """Event type → handler, with the ports bound."""
    table: dict[type[Message], Handler] = {
        event: functools.partial(on_step_event, ports=ports) for event in STEP_EVENTS
    }
    table[MessageFailed] = functools.partial(on_message_failed, ports=ports)
    return table
