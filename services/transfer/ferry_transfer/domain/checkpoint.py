"""A disk copy's checkpoint: which ranges are done, the byte counts, and the result once finished.

Workers change a :class:`DiskRecord` only through these pure functions, applied with a
compare-and-set on the stored revision, so two deliveries of one range never both count
it and ``bytes_done`` only grows. Ranges that need no copy (CBT found them unallocated)
are done from the start.

The record also holds the copy's :class:`CopyLocations`, written once by the coordinator from
its ``CopyDisk``: a ``CopyRange`` is obeyed only when it names these same locations, and the
worker reads and writes through the record's, never the message's.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import msgspec

from ferry_shared.migrations import SinkLocation, SourceDisk
from ferry_shared.providers import ProviderSpec

from .disk_plan import DiskPlan


class CopyLocations(msgspec.Struct, frozen=True, kw_only=True):
    """Where one disk copy reads and writes, as the coordinator's ``CopyDisk`` said."""

    source: ProviderSpec
    disk: SourceDisk
    sink: SinkLocation

    def differences(self, other: "CopyLocations") -> list[str]:
        """The names of the locations (``source``, ``disk``, ``sink``) in which ``other`` differs from these."""
        return [name for name in self.__struct_fields__ if getattr(self, name) != getattr(other, name)]


class DiskRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The checkpoint of one disk copy (bit ``i`` of a bitmap is ``bitmap[i // 8] >> (i % 8) & 1``)."""

    capacity: int
    range_size: int
    work: bytes
    """Ranges that must be copied."""
    done: bytes
    """Ranges on the target and verified (or needing no copy)."""
    bytes_done: int
    bytes_read: int = 0
    bytes_written: int = 0
    zero_bytes: int = 0
    """Bytes written as zeroes or holes, or never read because CBT found them unallocated."""
    to_read: int | None = None
    """Bytes the plan reads from the source in all; None in records stored by versions before it was kept."""
    started_at: float
    """Wall-clock seconds when the coordinator planned the copy (workers' clocks are compared)."""
    reported: int = 0
    """``bytes_done`` of the last progress event, and when it was decided."""
    reported_at: float = 0.0
    sha256: str = ""
    finished_at: float = 0.0
    locations: CopyLocations | None = None
    """Where the copy reads and writes; None in records stored by versions before it was kept."""

    @property
    def count(self) -> int:
        return -(-self.capacity // self.range_size)

    @property
    def complete(self) -> bool:
        """Every range is done (the checksum may not be combined yet)."""
        return self.bytes_done >= self.capacity

    @property
    def finished(self) -> bool:
        """The checksum is combined: the copy is over."""
        return bool(self.sha256)

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    def length_of(self, index: int) -> int:
        return min(self.range_size, self.capacity - index * self.range_size)

    def is_work(self, index: int) -> bool:
        return _bit(self.work, index)

    def is_done(self, index: int) -> bool:
        return _bit(self.done, index)

    def pending(self) -> Iterator[int]:
        """Work ranges not done yet, in order."""
        for index in range(self.count):
            if _bit(self.work, index) and not _bit(self.done, index):
                yield index


Change = Callable[[DiskRecord], DiskRecord | None]
"""A new record from the current one, or None to leave it as it is (applied with compare-and-set)."""


@dataclass(frozen=True, slots=True)
class RangeCounts:
    """What copying one range took."""

    bytes_read: int
    bytes_written: int
    zero_bytes: int


def new_record(plan: DiskPlan, locations: CopyLocations, now: float, *, align: int = 1) -> DiskRecord:
    """The checkpoint of a copy about to start at ``locations``: ranges outside the plan are done (and zero) already
    (``align``: the zero-detection block reads are widened to, for the bytes to read)."""
    size = -(-plan.count // 8)
    work, done = bytearray(size), bytearray(size)
    skipped = 0
    indexes = plan.work_indexes()
    for index in range(plan.count):
        if index in indexes:
            _set(work, index)
        else:
            _set(done, index)
            skipped += plan.length_of(index)
    return DiskRecord(
        capacity=plan.capacity,
        range_size=plan.range_size,
        work=bytes(work),
        done=bytes(done),
        bytes_done=skipped,
        zero_bytes=skipped,
        to_read=plan.bytes_to_read(align),
        started_at=now,
        reported_at=now,
        locations=locations,
    )


def with_locations(record: DiskRecord, locations: CopyLocations) -> DiskRecord | None:
    """The record copying at ``locations``; None if it does already."""
    return None if record.locations == locations else msgspec.structs.replace(record, locations=locations)


def range_done(
    record: DiskRecord, index: int, counts: RangeCounts, now: float, progress_interval: float
) -> tuple[DiskRecord, bool] | None:
    """The record with range ``index`` done, and whether to report progress now; None if it was done already.

    Progress is reported at most once per ``progress_interval`` (never for the last range:
    the worker that completes the disk reports the final count itself).
    """
    if index < 0 or index >= record.count:
        raise ValueError(f"range {index} is outside the disk's {record.count} ranges")
    if _bit(record.done, index):
        return None
    done = bytearray(record.done)
    _set(done, index)
    bytes_done = record.bytes_done + record.length_of(index)
    report = bytes_done < record.capacity and now - record.reported_at >= progress_interval
    updated = msgspec.structs.replace(
        record,
        done=bytes(done),
        bytes_done=bytes_done,
        bytes_read=record.bytes_read + counts.bytes_read,
        bytes_written=record.bytes_written + counts.bytes_written,
        zero_bytes=record.zero_bytes + counts.zero_bytes,
        reported=bytes_done if report else record.reported,
        reported_at=now if report else record.reported_at,
    )
    return updated, report


def finish(record: DiskRecord, sha256: str, now: float) -> DiskRecord | None:
    """The record of the finished copy; None if it was finished already (the first result stands)."""
    if record.finished:
        return None
    if not record.complete:
        raise ValueError("a copy with ranges still to do cannot finish")
    return msgspec.structs.replace(record, sha256=sha256, finished_at=now, reported=record.capacity)


def _bit(bitmap: bytes, index: int) -> bool:
    return bool(bitmap[index >> 3] >> (index & 7) & 1)


def _set(bitmap: bytearray, index: int) -> None:
    bitmap[index >> 3] |= 1 << (index & 7)
