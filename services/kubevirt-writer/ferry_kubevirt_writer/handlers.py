"""Use cases of the kubevirt-writer service: one handler per migration command, and the
handler table the bootstrap gives the service's consumer.

Each handler checks the VM blueprint, asks the target's writer to do the step while
holding the message's lease, and answers with the step's event (its ``message_id``
derived from the step, so a redelivered command publishes it once).
"""

import functools

from ferry_kubevirt_writer.domain.checks import check_target_vm, has_valid_names
from ferry_kubevirt_writer.domain.ports import EventPublisher, TargetWriter, TargetWriters
from ferry_shared.bus.consumer import HandlerTable
from ferry_shared.bus.delivery import Delivery
from ferry_shared.errors import PermanentError
from ferry_shared.migrations import (
    CleanupVm,
    CreateVm,
    PrepareVolumes,
    VmCleanedUp,
    VmCreated,
    VolumesPrepared,
    step_fields,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.target_vm import TargetVm


async def _writer(targets: TargetWriters, target: ProviderSpec, vm: TargetVm) -> TargetWriter:
    try:
        check_target_vm(vm)
    except ValueError as error:
        raise PermanentError("invalid_vm", str(error)) from error
    return await targets.writer_for(target)


async def prepare_volumes(
    command: PrepareVolumes, delivery: Delivery, *, targets: TargetWriters, publisher: EventPublisher
) -> None:
    """Create the VM's volumes and sinks; answer with where each disk is written."""
    writer = await _writer(targets, command.target, command.vm)
    async with delivery.lease():
        sinks = await writer.prepare_volumes(command.migration, command.vm)
    await publisher.publish(
        VolumesPrepared(**step_fields(command.migration, command.vm_id, "volumes_prepared"), sinks=sinks)
    )


async def create_vm(
    command: CreateVm, delivery: Delivery, *, targets: TargetWriters, publisher: EventPublisher
) -> None:
    """Retire the sinks and create the VirtualMachine; answer with where it is."""
    writer = await _writer(targets, command.target, command.vm)
    async with delivery.lease():
        location = await writer.create_vm(command.migration, command.vm)
    await publisher.publish(VmCreated(**step_fields(command.migration, command.vm_id, "vm_created"), location=location))


async def cleanup_vm(
    command: CleanupVm, delivery: Delivery, *, targets: TargetWriters, publisher: EventPublisher
) -> None:
    """Remove what was created for the VM; answer with what was removed."""
    removed: tuple[str, ...] = ()
    if has_valid_names(command.vm):  # else nothing can have been created for it
        writer = await targets.writer_for(command.target)
        async with delivery.lease():
            removed = await writer.cleanup_vm(command.migration, command.vm)
    await publisher.publish(
        VmCleanedUp(**step_fields(command.migration, command.vm_id, "vm_cleaned_up"), removed=removed)
    )


def handler_table(targets: TargetWriters, publisher: EventPublisher) -> HandlerTable:
    """Command type → handler, with dependencies bound."""
    return {
        PrepareVolumes: functools.partial(prepare_volumes, targets=targets, publisher=publisher),
        CreateVm: functools.partial(create_vm, targets=targets, publisher=publisher),
        CleanupVm: functools.partial(cleanup_vm, targets=targets, publisher=publisher),
    }
