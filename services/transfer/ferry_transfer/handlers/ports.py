"""What the transfer's use cases need from the outside world; adapters implement these, unit tests fake them."""

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ferry_shared.messages import Message
from ferry_shared.migrations import DiskSink as SinkSpec
from ferry_shared.migrations import SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_transfer.adapters.copier import DiskSource
from ferry_transfer.adapters.sinks import DiskSink


class SourceOpener(Protocol):
    def open(
        self, provider: ProviderSpec, disk: SourceDisk, connections: int
    ) -> AbstractAsyncContextManager[DiskSource]:
        """A reader of the disk's bytes with ``connections`` requests in flight."""


class SinkOpener(Protocol):
    def open(self, spec: SinkSpec) -> AbstractAsyncContextManager[DiskSink]:
        """The target disk, closed when the context ends."""


class EventPublisher(Protocol):
    async def publish(self, message: Message) -> object:
        """Publish on the message's subject (deduplicated by its ``message_id``)."""


class Leased(Protocol):
    """The delivery of the command being handled (:class:`ferry_shared.bus.delivery.Delivery`)."""

    def lease(self, interval: float | None = None) -> AbstractAsyncContextManager[None]:
        """Keep the message while the block runs."""
