"""What the transfer's use cases need from the outside world; adapters implement these, unit tests fake them."""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ferry_shared.messages import Message
from ferry_shared.migrations import DiskSink as SinkSpec
from ferry_shared.migrations import SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_transfer.adapters.checkpoints import Change, DiskId
from ferry_transfer.adapters.sinks import DiskSink
from ferry_transfer.adapters.source_pool import DiskSource
from ferry_transfer.domain.checkpoint import DiskRecord
from ferry_transfer.domain.ranges import Extent


class SourceReaders(Protocol):
    def reader(self, provider: ProviderSpec, disk: SourceDisk) -> AbstractAsyncContextManager[DiskSource]:
        """A reader of the disk's bytes (logging in first if needed)."""


class ChangedAreas(Protocol):
    async def allocated(self, provider: ProviderSpec, vm_id: str, disk: SourceDisk) -> list[Extent] | None:
        """The disk's allocated extents from CBT, or None when CBT cannot tell."""


class Sinks(Protocol):
    async def prepare(self, spec: SinkSpec, capacity: int, zero: Sequence[Extent]) -> None:
        """Check the sink's size and make ``zero`` read as zeroes (idempotent)."""

    def open(self, spec: SinkSpec) -> AbstractAsyncContextManager[DiskSink]:
        """The prepared sink, for writing ranges."""


class Checkpoints(Protocol):
    async def load(self, disk: DiskId) -> DiskRecord | None: ...

    async def create(self, disk: DiskId, record: DiskRecord) -> DiskRecord:
        """Store ``record`` unless one exists; the stored one."""

    async def change(self, disk: DiskId, change: Change) -> tuple[DiskRecord, DiskRecord | None]:
        """Compare-and-set ``change``: (the record it was applied to, the new one or None)."""

    async def put_digest(self, disk: DiskId, index: int, digest: bytes) -> None: ...

    async def digests(self, disk: DiskId) -> dict[int, bytes]: ...


class EventPublisher(Protocol):
    async def publish(self, message: Message) -> object:
        """Publish on the message's subject (deduplicated by its ``message_id``)."""


class Leased(Protocol):
    """The delivery of the command being handled (:class:`ferry_shared.bus.delivery.Delivery`)."""

    def lease(self, interval: float | None = None) -> AbstractAsyncContextManager[None]:
        """Keep the message while the block runs."""
