"""The ports of the transfer service: what its handlers need from source disks, sinks,
checkpoints, the bus and the cancellation registry. Adapters implement them (a vSphere
datastore, raw files and NBD exports, a KV bucket, NATS); unit tests use hand-written fakes.
"""

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ferry_shared.messages import Message
from ferry_shared.migrations import SinkLocation, SourceDisk
from ferry_shared.providers import ProviderSpec

from .checkpoint import Change, DiskRecord
from .copies import DiskId, RangeCopy
from .disk_plan import RangeWork
from .ranges import Extent

Buffer = bytes | bytearray | memoryview
Clock = Callable[[], float]
"""Wall-clock seconds (``time.time``); workers' clocks are compared."""


class DiskSource(Protocol):
    """A source disk being read."""

    async def read(self, offset: int, length: int) -> bytes:
        """Exactly the bytes ``[offset, offset + length)`` of the source disk."""

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` (writable bytes) with the source disk's bytes from ``offset`` on.

        After a failure or a cancellation its content is undefined."""


class BlockingSink(Protocol):
    """A sink's blocking calls, for a caller that runs in a worker thread already (a local file)."""

    def write_sync(self, offset: int, data: Buffer) -> None:
        """Store ``data`` at ``offset``."""

    def zero_sync(self, offset: int, length: int) -> None:
        """Make ``[offset, offset + length)`` read as zeroes."""

    def read_into_sync(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` with what the target holds from ``offset`` on."""

    def reads_zero_sync(self, offset: int, length: int) -> bool:
        """Whether the range reads as zeroes."""


class DiskSink(Protocol):
    """A target disk of a fixed ``size`` being written."""

    @property
    def size(self) -> int: ...

    async def write(self, offset: int, data: Buffer) -> None:
        """Store ``data`` at ``offset``."""

    async def zero(self, offset: int, length: int) -> None:
        """Make ``[offset, offset + length)`` read as zeroes, preferably without allocating."""

    async def finish(self) -> None:
        """Make every write so far durable (one flush may serve several ranges that end together)."""

    async def read(self, offset: int, length: int) -> bytes:
        """Read back what the target holds (for verification)."""

    async def reads_zero(self, offset: int, length: int) -> bool:
        """Whether the range reads as zeroes (a hole is checked without reading it where possible)."""

    @property
    def blocking(self) -> BlockingSink | None:
        """The same sink's blocking calls where they are cheap (a local file), so that a chunk is
        written and checked in one worker thread; None where every call is remote (NBD)."""


class SourceReaders(Protocol):
    def reader(self, provider: ProviderSpec, disk: SourceDisk) -> AbstractAsyncContextManager[DiskSource]:
        """A reader of the disk's bytes (logging in first if needed)."""


class ChangedAreas(Protocol):
    async def allocated(self, provider: ProviderSpec, vm_id: str, disk: SourceDisk) -> list[Extent] | None:
        """The disk's allocated extents from CBT, or None when CBT cannot tell."""


class Sinks(Protocol):
    async def prepare(self, location: SinkLocation, capacity: int, zero: Sequence[Extent]) -> None:
        """Check the sink's size and make ``zero`` read as zeroes (idempotent)."""

    def open(self, location: SinkLocation) -> AbstractAsyncContextManager[DiskSink]:
        """The prepared sink, for writing ranges."""


class RangeCopier(Protocol):
    async def __call__(self, source: DiskSource, sink: DiskSink, work: RangeWork, *, chunk_size: int) -> RangeCopy:
        """Copy ``work`` from ``source`` to ``sink`` ``chunk_size`` bytes at a time, read it back and
        compare (copying it again once on a difference); ``RangeMismatch`` if it still differs.
        The caller makes it durable (:meth:`DiskSink.finish`)."""


class Checkpoints(Protocol):
    async def load(self, disk: DiskId) -> DiskRecord | None: ...

    async def create(self, disk: DiskId, record: DiskRecord) -> DiskRecord:
        """Store ``record`` unless one exists; the stored one."""

    async def change(self, disk: DiskId, change: Change) -> tuple[DiskRecord, DiskRecord | None]:
        """Compare-and-set ``change``: (the record it was applied to, the new one or None);
        ``CheckpointMissing`` if there is no record, ``CheckpointConflict`` if it kept changing."""

    async def put_digest(self, disk: DiskId, index: int, digest: bytes) -> None: ...

    async def digests(self, disk: DiskId) -> dict[int, bytes]: ...


class Cancellations(Protocol):
    """Which VMs were cancelled, and the cancel signals of the copies in flight."""

    async def caught_up(self) -> None:
        """Return once the cancels of the recent past are known (or after a bounded wait)."""

    def is_cancelled(self, migration: str, vm_id: str) -> bool: ...

    def track(self, migration: str, vm_id: str) -> AbstractContextManager[asyncio.Event]:
        """Register a copy of the VM for its lifetime; the event is set (maybe already) when it is cancelled."""


class EventPublisher(Protocol):
    async def publish(self, message: Message) -> object:
        """Publish on the message's subject (deduplicated by its ``message_id``)."""


class Leased(Protocol):
    """The delivery of the command being handled (:class:`ferry_shared.bus.delivery.Delivery`)."""

    def lease(self, interval: float | None = None) -> AbstractAsyncContextManager[None]:
        """Keep the message while the block runs."""


@dataclass(frozen=True)
class CopyPorts:
    """The ports both copy handlers use."""

    sources: SourceReaders
    sinks: Sinks
    checkpoints: Checkpoints
    publisher: EventPublisher
    cancellations: Cancellations
    clock: Clock
