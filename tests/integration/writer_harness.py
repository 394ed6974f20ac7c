"""Runs the kubevirt-writer's handlers as the service does (its bootstrap's parts behind a
real DurableConsumer on real NATS) and reads the events it publishes; shared by the
writer's integration tests."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec
import pytest
from nats.aio.msg import Msg

from ferry_kubevirt_writer.bootstrap import SERVICE, bootstrap
from ferry_kubevirt_writer.settings import WriterSettings
from ferry_shared import subjects
from ferry_shared.credential_stores.choice import open_credential_store
from ferry_shared.credentials import CredentialStore, Secret
from ferry_shared.messages import Message, MessageFailed, decoder_for
from ferry_shared.migrations import CleanupVm, CreateVm, PrepareVolumes, VmCleanedUp, VmCreated, VolumesPrepared
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus
from ferry_shared.settings import ServiceSettings
from ferry_shared.target_vm import TargetVm
from ferry_testpeers.waiting import async_wait_for

from .service_runner import commands_spec, running_parts

E = TypeVar("E", bound=Message)
MIGRATION = "wave-1-1"
WITHIN = 30.0
_decoder = decoder_for([VolumesPrepared, VmCreated, VmCleanedUp, MessageFailed])


@dataclass
class Writer:
    """The running writer, and everything the bus carried from it."""

    bus: Bus
    credentials: CredentialStore
    events: list[Message] = field(default_factory=list)
    commands: int = 0

    async def send(self, command_type: type[PrepareVolumes | CreateVm | CleanupVm], target: ProviderSpec,
                   vm: TargetVm, migration: str = MIGRATION) -> None:  # fmt: skip
        """Publish a command (each with its own message id, as a redelivery or a retry has)."""
        self.commands += 1
        command = command_type(
            message_id=f"test-{self.commands}", migration=migration, vm_id=vm.source_vm_id, target=target, vm=vm
        )
        await self.bus.publisher.publish(command)

    async def next(self, event_type: type[E], *, after: int = 0, what: str = "") -> E:
        """The first event of ``event_type`` past the first ``after`` events of that type;
        fails with the MessageFailed events seen, if the wait runs out."""

        async def found() -> E | None:
            matching = [e for e in self.events if isinstance(e, event_type)]
            return matching[after] if len(matching) > after else None

        try:
            return await async_wait_for(found, timeout=WITHIN, what=what or event_type.__name__)
        except AssertionError:
            failures = [e for e in self.events if isinstance(e, MessageFailed)]
            pytest.fail(f"no {what or event_type.__name__} within {WITHIN:.0f}s; failures: {failures}")

    async def failure(self) -> MessageFailed:
        found: MessageFailed = await async_wait_for(self._first_failure, timeout=WITHIN, what="a MessageFailed event")
        return found

    async def _first_failure(self) -> MessageFailed | None:
        return next((e for e in self.events if isinstance(e, MessageFailed)), None)

    async def settled(self) -> None:
        """Wait until every published command was handled and acknowledged."""

        async def done() -> bool:
            info = await self.bus.js.consumer_info(subjects.COMMANDS_STREAM, subjects.durable_name(SERVICE))
            return info.num_pending == 0 and info.num_ack_pending == 0

        await async_wait_for(done, timeout=WITHIN, what="the writer to handle every command")

    def of(self, event_type: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, event_type)]


@contextlib.asynccontextmanager
async def running_writer(
    bus: Bus, settings: WriterSettings | None = None, secrets: dict[str, str] | None = None
) -> AsyncIterator[Writer]:
    """The writer's command consumer, with ``secrets`` (provider → kubeconfig) stored first."""
    credentials = await open_credential_store(bus.js, ServiceSettings())
    for provider, secret in (secrets or {}).items():
        await credentials.put(provider, Secret(secret))
    writer = Writer(bus, credentials)

    async def collect(msg: Msg) -> None:
        with contextlib.suppress(msgspec.DecodeError):  # another service's event
            writer.events.append(_decoder.decode(msg.data))

    subscription = await bus.nc.subscribe(subjects.ALL_EVENTS, cb=collect)
    wired = await bootstrap(bus, ServiceSettings(), settings or WriterSettings())
    spec = commands_spec(SERVICE, fetch_timeout=0.2, max_deliver=2, unexpected_error_delay=0.5)
    try:
        async with running_parts(bus, wired.parts, spec):
            yield writer
    finally:
        await subscription.unsubscribe()
