"""The ``CopyDisk`` use case: plan a disk's copy as ranges, put them on the work queue, and ack.

The coordinator checks that the source can be read (login, the flat file answers a small
read), asks CBT for the allocated extents when the disk has it, cuts the disk into ranges
(:mod:`ferry_transfer.domain.disk_plan`), prepares the sink (size checked, the parts no
range covers zeroed), stores the checkpoint — with the command's source, disk and sink, the
only locations a worker will read or write — and publishes one ``CopyRange`` per range that
is not done, naming those locations, with message ids derived from the range. Any worker
copies any range (:mod:`.copy_range`); the one that completes the disk publishes ``DiskCopied``.

It is idempotent: a redelivered ``CopyDisk`` whose checkpoint exists does not start over —
it publishes the ranges not done again (deduplicated within the stream's window, and
skipped by workers if done meanwhile), finishes a complete disk whose finisher died, and
publishes ``DiskCopied`` again for a finished one. When its locations differ from the
checkpoint's (a moved sink pod, or a checkpoint stored before locations were kept), the
checkpoint takes them first: only the planner may send ``CopyDisk``. A cancelled VM's disk is not planned.
"""

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ferry_shared.errors import PermanentError
from ferry_shared.migrations import CopyDisk, CopyRange, step_id
from ferry_transfer.domain.checkpoint import CopyLocations, DiskRecord, new_record, with_locations
from ferry_transfer.domain.copies import DiskId
from ferry_transfer.domain.disk_plan import DiskPlan, RangeWork, plan_disk, range_size_for
from ferry_transfer.domain.ports import ChangedAreas, CopyPorts, Leased
from ferry_transfer.domain.ranges import DEFAULT_RANGE_SIZE, ZERO_BLOCK

from .completion import DiskEvents, finish_disk
from .failures import copy_failures

log = logging.getLogger(__name__)

PROBE_BYTES = 4096
"""Read from the start of the disk before planning: the login works and the file is there."""


@dataclass(frozen=True)
class CopyOptions:
    range_size: int = DEFAULT_RANGE_SIZE
    """Bytes per range (grown for disks that would have more than ``disk_plan.MAX_RANGES``)."""
    publish_window: int = 64
    """``CopyRange`` publishes awaiting their acknowledgement at once."""


async def copy_disk(
    command: CopyDisk, delivery: Leased, *, ports: CopyPorts, cbt: ChangedAreas, options: CopyOptions
) -> None:
    """Plan the disk's copy and put its ranges on the queue (see the module docstring)."""
    if command.source.type != "vsphere":
        raise PermanentError(
            "unsupported_source",
            f"disk {command.disk.key} of VM {command.vm_id} comes from a {command.source.type} provider; "
            "the transfer copies from vSphere only",
        )
    disk = DiskId(command.migration, command.vm_id, command.disk.key)
    async with delivery.lease():  # from the start: the replay of past cancels may take a moment
        await ports.cancellations.caught_up()
        if ports.cancellations.is_cancelled(command.migration, command.vm_id):
            log.info("not copying disk %d of cancelled VM %s", command.disk.key, command.vm_id)
            await DiskEvents(ports.publisher).canceled(disk)
            return
        with copy_failures(command):
            await _coordinate(command, disk, ports, cbt, options)


async def _coordinate(
    command: CopyDisk, disk: DiskId, ports: CopyPorts, cbt: ChangedAreas, options: CopyOptions
) -> None:
    events = DiskEvents(ports.publisher)
    record = await ports.checkpoints.load(disk)
    if record is not None and record.finished:
        log.info("disk %d of VM %s was copied already; reporting it again", disk.disk_key, disk.vm_id)
        await events.copied(disk, record)
        return
    if record is None or not record.complete:
        await _probe(command, ports)
        allocated = None
        if command.disk.cbt:
            allocated = await cbt.allocated(command.source, command.vm_id, command.disk)
        capacity = command.disk.capacity_bytes
        range_size = record.range_size if record else range_size_for(capacity, options.range_size)
        plan = plan_disk(capacity, range_size, allocated)
        locations = CopyLocations(source=command.source, disk=command.disk, sink=command.sink)
        if record is None:
            await ports.sinks.prepare(command.sink, capacity, plan.uncovered())
            record = await ports.checkpoints.create(disk, new_record(plan, locations, ports.clock(), align=ZERO_BLOCK))
            log.info(
                "planned disk %d of VM %s: %d of %d ranges of %d bytes to copy%s",
                disk.disk_key,
                disk.vm_id,
                len(plan.work),
                plan.count,
                range_size,
                " (CBT)" if allocated is not None else "",
            )
        elif record.locations != locations:
            record = await _relocate(disk, record, locations, ports)
        pending = _pending_work(plan, record)
        await _publish(command, record.locations or locations, pending, ports, options.publish_window)
    if record.complete:
        await finish_disk(ports.checkpoints, events, disk, ports.clock())


async def _probe(command: CopyDisk, ports: CopyPorts) -> None:
    """Log in and read the first bytes: a wrong password or a missing file fails here, once."""
    length = min(PROBE_BYTES, command.disk.capacity_bytes)
    async with ports.sources.reader(command.source, command.disk) as reader:
        if length:
            await reader.read(0, length)


async def _relocate(disk: DiskId, record: DiskRecord, locations: CopyLocations, ports: CopyPorts) -> DiskRecord:
    """Record the locations of a redelivered ``CopyDisk`` that differ from the checkpoint's (a sink pod that
    moved, or a checkpoint stored before locations were kept): only the planner sends ``CopyDisk``."""
    changed = [] if record.locations is None else record.locations.differences(locations)
    log.info(
        "disk %d of VM %s: the checkpoint takes the %s of the redelivered CopyDisk",
        disk.disk_key,
        disk.vm_id,
        " and ".join(changed) or "locations",
    )
    seen, updated = await ports.checkpoints.change(disk, lambda current: with_locations(current, locations))
    return updated or seen


async def _publish(
    command: CopyDisk, locations: CopyLocations, work: Iterable[RangeWork], ports: CopyPorts, window: int
) -> None:
    """One ``CopyRange`` per range, ``window`` at a time, naming the checkpoint's locations."""
    pending = iter(work)

    async def publisher() -> None:
        for item in pending:
            await ports.publisher.publish(_range_command(command, locations, item))

    await asyncio.gather(*(publisher() for _ in range(window)))


def _pending_work(plan: DiskPlan, record: DiskRecord) -> Iterator[RangeWork]:
    """The plan's ranges the checkpoint does not have done; a range the checkpoint wants but the plan
    no longer has (CBT answered differently) is read whole."""
    planned = {item.index: item for item in plan.work}
    for index in record.pending():
        offset = index * record.range_size
        yield planned.get(index) or RangeWork(index, offset, record.length_of(index))


def _range_command(command: CopyDisk, locations: CopyLocations, work: RangeWork) -> CopyRange:
    return CopyRange(
        message_id=step_id(command.migration, command.vm_id, "copy_range", command.disk.key, work.index),
        migration=command.migration,
        vm_id=command.vm_id,
        source=locations.source,
        disk=locations.disk,
        sink=locations.sink,
        index=work.index,
        offset=work.offset,
        length=work.length,
        extents=tuple((extent.offset, extent.length) for extent in work.extents or ()),
    )
