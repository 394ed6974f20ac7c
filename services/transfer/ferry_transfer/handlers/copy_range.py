"""The ``CopyRange`` use case: copy one range of a disk, check it, and count it exactly once.

Any worker takes any range, but only where the disk's checkpoint says: the coordinator wrote the
copy's source, disk and sink there from its ``CopyDisk``, a range naming other ones is refused
(``range_mismatch``) before a byte is read or written, and the worker reads and writes through
the checkpoint's locations, never the message's. A range of a cancelled VM, or one the checkpoint has done
already (a redelivery), is acknowledged without copying. Otherwise the worker holds the
message's lease while it copies the range (the :class:`~ferry_transfer.domain.ports.RangeCopier`:
read, write, read back and compare, re-copy once on a difference), makes it durable (one flush
with the other ranges of the sink that end meanwhile), stores the range's digest,
then marks the range done in the disk's checkpoint with compare-and-set — so a range
redelivered after a crash is never counted twice and ``bytes_done`` never goes backwards —
and publishes ``DiskCopyProgress`` when the checkpoint says it is time. The worker whose
update completes the disk finishes it (:func:`.completion.finish_disk`).
"""

import itertools
import logging
import time
from dataclasses import dataclass

from ferry_shared.errors import PermanentError
from ferry_shared.migrations import CopyRange
from ferry_transfer.domain.checkpoint import CopyLocations, DiskRecord, range_done
from ferry_transfer.domain.copies import DiskId, RangeCopy
from ferry_transfer.domain.disk_plan import RangeWork
from ferry_transfer.domain.ports import CopyPorts, Leased, RangeCopier
from ferry_transfer.domain.ranges import DEFAULT_CHUNK_SIZE, Extent

from .cancelling import run_unless_cancelled
from .completion import DiskEvents, finish_disk
from .failures import copy_failures, describe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RangeOptions:
    chunk_size: int = DEFAULT_CHUNK_SIZE
    """Bytes read, written and checked at a time within a range (memory per range is about twice this)."""
    progress_interval: float = 0.5
    """Least time between two ``DiskCopyProgress`` events of one disk (across all workers)."""


async def copy_range(
    command: CopyRange,
    delivery: Leased,
    *,
    ports: CopyPorts,
    copier: RangeCopier,
    options: RangeOptions,
) -> None:
    """Copy, check and count one range (see the module docstring), holding the lease from the start:
    the worker may wait for the replay of past cancels or for a connection to the source first."""
    async with delivery.lease():
        await _handle(command, ports, copier, options)


async def _handle(command: CopyRange, ports: CopyPorts, copier: RangeCopier, options: RangeOptions) -> None:
    disk = DiskId(command.migration, command.vm_id, command.disk.key)
    events = DiskEvents(ports.publisher)
    await ports.cancellations.caught_up()
    if ports.cancellations.is_cancelled(command.migration, command.vm_id):
        log.info("%s: skipped, the VM was cancelled", describe(command))
        await events.canceled(disk)
        return
    with copy_failures(command):
        record = await ports.checkpoints.load(disk)
    if record is None:
        log.warning("%s: no checkpoint (the copy was removed); nothing to do", describe(command))
        return
    locations = _locations(command, record)
    work = _work(command, record)
    if record.is_done(work.index):
        if record.complete:  # the finisher may have died before DiskCopied left: say it (again)
            with copy_failures(command):
                await finish_disk(ports.checkpoints, events, disk, ports.clock())
        return
    with ports.cancellations.track(command.migration, command.vm_id) as cancelled, copy_failures(command):
        copying = _copy(locations, disk, work, ports, copier, options)
        stopped, _ = await run_unless_cancelled(copying, cancelled)
    if stopped:
        log.info("%s: stopped, the VM was cancelled", describe(command))
        await events.canceled(disk)


async def _copy(
    locations: CopyLocations,
    disk: DiskId,
    work: RangeWork,
    ports: CopyPorts,
    copier: RangeCopier,
    options: RangeOptions,
) -> None:
    started = time.monotonic()
    async with ports.sinks.open(locations.sink) as sink:
        async with ports.sources.reader(locations.source, locations.disk) as source:
            copied = await copier(source, sink, work, chunk_size=options.chunk_size)
        await sink.finish()  # durable before it counts (one flush with the sink's ranges that end meanwhile)
    if not await _record(disk, work, copied, ports, options.progress_interval):
        log.info("range %d of disk %d of VM %s: another delivery counted it", work.index, disk.disk_key, disk.vm_id)
        return
    log.info(
        "copied range %d of disk %d of VM %s: %d bytes (%d read, %d written) in %.2fs",
        work.index,
        disk.disk_key,
        disk.vm_id,
        work.length,
        copied.counts.bytes_read,
        copied.counts.bytes_written,
        time.monotonic() - started,
        extra={"range_index": work.index, "disk_key": disk.disk_key, "attempts": copied.attempts},
    )


async def _record(disk: DiskId, work: RangeWork, copied: RangeCopy, ports: CopyPorts, interval: float) -> bool:
    """Store the digest and mark the range done; False if another delivery of it counted it already."""
    await ports.checkpoints.put_digest(disk, work.index, copied.digest)
    now = ports.clock()
    decided: list[bool] = []

    def mark(current: DiskRecord) -> DiskRecord | None:
        result = range_done(current, work.index, copied.counts, now, interval)
        decided[:] = [result is not None and result[1]]
        return None if result is None else result[0]

    seen, updated = await ports.checkpoints.change(disk, mark)
    if updated is None:
        return False
    events = DiskEvents(ports.publisher)
    if decided and decided[0]:
        await events.progress(disk, updated)
    if updated.complete and not seen.complete:
        await finish_disk(ports.checkpoints, events, disk, ports.clock())
    return True


def _locations(command: CopyRange, record: DiskRecord) -> CopyLocations:
    """The checkpoint's locations, when the command names the same ones (its own are never used)."""
    if record.locations is None:
        raise PermanentError(
            "checkpoint_without_locations",
            f"{describe(command)}: the disk's checkpoint does not say where to read and write (the copy was "
            "planned by an older version of Ferry); cancel the migration and start it again",
        )
    named = CopyLocations(source=command.source, disk=command.disk, sink=command.sink)
    if differing := record.locations.differences(named):
        fields = " and ".join(differing)
        log.warning(
            "%s: refused, its %s differ from the disk's checkpoint (a forged or stale command)",
            describe(command),
            fields,
            extra={"disk_key": command.disk.key, "differing": differing},
        )
        raise PermanentError(
            "range_mismatch",
            f"{describe(command)}: its {fields} differ from those of the disk's checkpoint, which the CopyDisk "
            "handler wrote; nothing was read or written",
        )
    return record.locations


def _work(command: CopyRange, record: DiskRecord) -> RangeWork:
    """The range to copy, checked against the disk's grid in the checkpoint."""
    index = command.index
    fits = 0 <= index < record.count and command.offset == index * record.range_size
    if not fits or command.length != record.length_of(index):
        raise PermanentError(
            "invalid_range",
            f"{describe(command)}: [{command.offset}, +{command.length}) is not range {index} of the disk's "
            f"checkpoint ({record.range_size}-byte ranges of {record.capacity} bytes)",
        )
    extents = tuple(Extent(offset, length) for offset, length in command.extents)
    inside = all(command.offset <= e.offset and e.end <= command.offset + command.length for e in extents)
    ordered = all(a.end <= b.offset for a, b in itertools.pairwise(extents))
    if not (inside and ordered):
        raise PermanentError(
            "invalid_range", f"{describe(command)}: its extents are not ordered parts of the range: {command.extents}"
        )
    return RangeWork(index, command.offset, command.length, extents or None)
