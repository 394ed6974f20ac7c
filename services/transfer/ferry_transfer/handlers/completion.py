"""The events of one disk copy, and finishing it once every range is done.

Any worker may publish them: every event's ``message_id`` is derived from the disk (and,
for progress, from ``bytes_done``), so a repeat is stored once. :func:`finish_disk` is run by
the worker whose range completed the disk, or by whoever finds a complete but unfinished
checkpoint later (that worker crashed): it combines the range digests into the disk
checksum, records it with compare-and-set (the first result stands), and publishes the
final progress and ``DiskCopied`` from the stored record, so a repeat is identical.
"""

import logging

from ferry_shared.errors import TemporaryError
from ferry_shared.migrations import DiskCopied, DiskCopyCanceled, DiskCopyProgress, step_id
from ferry_transfer.domain.checkpoint import DiskRecord, finish
from ferry_transfer.domain.checksum import combine, zero_range_digest
from ferry_transfer.domain.copies import DiskId
from ferry_transfer.domain.ports import Checkpoints, EventPublisher

log = logging.getLogger(__name__)


class DiskEvents:
    """Publishes the events of disk copies."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def progress(self, disk: DiskId, record: DiskRecord) -> None:
        """The record's counts: of the logical size, and apart from it the bytes moved."""
        await self._publisher.publish(
            DiskCopyProgress(
                message_id=step_id(disk.migration, disk.vm_id, "progress", disk.disk_key, record.bytes_done),
                migration=disk.migration,
                vm_id=disk.vm_id,
                disk_key=disk.disk_key,
                bytes_done=record.bytes_done,
                bytes_total=record.capacity,
                bytes_read=record.bytes_read,
                bytes_written=record.bytes_written,
                bytes_to_read=record.to_read,
            )
        )

    async def canceled(self, disk: DiskId) -> None:
        await self._publisher.publish(
            DiskCopyCanceled(
                message_id=step_id(disk.migration, disk.vm_id, "disk_copy_canceled", disk.disk_key),
                migration=disk.migration,
                vm_id=disk.vm_id,
                disk_key=disk.disk_key,
            )
        )

    async def copied(self, disk: DiskId, record: DiskRecord) -> None:
        """The final progress, then ``DiskCopied``, from a finished record."""
        await self.progress(disk, record)
        await self._publisher.publish(
            DiskCopied(
                message_id=step_id(disk.migration, disk.vm_id, "disk_copied", disk.disk_key),
                migration=disk.migration,
                vm_id=disk.vm_id,
                disk_key=disk.disk_key,
                bytes_total=record.capacity,
                bytes_read=record.bytes_read,
                bytes_written=record.bytes_written,
                zero_bytes_skipped=record.zero_bytes,
                sha256=record.sha256,
                seconds=round(record.seconds, 3),
            )
        )


async def finish_disk(checkpoints: Checkpoints, events: DiskEvents, disk: DiskId, now: float) -> DiskRecord:
    """Combine the checksum of a complete disk, record it and publish ``DiskCopied`` (see the module docstring)."""
    record = await checkpoints.load(disk)
    if record is None or not record.complete:
        raise ValueError(f"disk {disk.disk_key} of VM {disk.vm_id} is not completely copied")
    if not record.finished:
        digests = await checkpoints.digests(disk)
        parts = []
        for index in range(record.count):
            offset, length = index * record.range_size, record.length_of(index)
            if not record.is_work(index):
                parts.append((offset, length, zero_range_digest(offset, length)))
            elif (digest := digests.get(index)) is not None:
                parts.append((offset, length, digest))
            else:
                raise TemporaryError(
                    "checkpoint_incomplete",
                    f"the digest of range {index} of disk {disk.disk_key} of VM {disk.vm_id} is not stored yet",
                    delay=2.0,
                )
        checksum = combine(parts)
        seen, finished = await checkpoints.change(disk, lambda current: finish(current, checksum, now))
        record = finished or seen
        log.info(
            "copied disk %d of VM %s: %d bytes, %d read, %d written, %d zero, in %.1fs",
            disk.disk_key,
            disk.vm_id,
            record.capacity,
            record.bytes_read,
            record.bytes_written,
            record.zero_bytes,
            record.seconds,
        )
    await events.copied(disk, record)
    return record
