"""The ports of the kubevirt-writer: what its handlers need from a target and from the
bus. Adapters implement them for a Kubernetes cluster and a local directory; unit tests
use hand-written fakes."""

from typing import Protocol

from ferry_shared.messages import Message
from ferry_shared.migrations import SinkLocation
from ferry_shared.providers import ProviderSpec
from ferry_shared.target_vm import TargetVm


class TargetWriter(Protocol):
    """Writes one target: its volumes and sinks, the VM, and their removal.

    Every method is idempotent (a command may be delivered twice) and raises
    ``PermanentError`` or ``TemporaryError`` with a reason a person can act on.
    """

    async def prepare_volumes(self, migration: str, vm: TargetVm) -> tuple[SinkLocation, ...]:
        """Create the VM's volumes and whatever serves them; return one sink per disk,
        in disk order, once every sink accepts writes."""
        ...

    async def create_vm(self, migration: str, vm: TargetVm) -> str:
        """Retire the sinks and create the VM; return where it is (``ns/name`` or a directory)."""
        ...

    async def cleanup_vm(self, migration: str, vm: TargetVm) -> tuple[str, ...]:
        """Remove what this writer created for the VM (for ``migration``, where the target
        can tell migrations apart); return what was removed."""
        ...


class TargetWriters(Protocol):
    """Hands out the writer of a target provider."""

    async def writer_for(self, target: ProviderSpec) -> TargetWriter:
        """The writer of ``target``; raises ``PermanentError`` for a provider that is no target."""
        ...


class EventPublisher(Protocol):
    """Publishes events (the bus's ``Publisher``)."""

    async def publish(self, message: Message) -> object: ...
