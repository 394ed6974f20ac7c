"""Event consumers against a real nats-server: a durable over the events stream that reads
only the subjects of its handlers, acks types it does not know, starts at new events and
resumes where it was; and ``MessageFailed`` naming what a failed step message was about."""

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import ClassVar

import msgspec
import pytest
from nats.js.api import ConsumerInfo, DeliverPolicy
from nats.js.errors import NotFoundError

from ferry_shared import subjects
from ferry_shared.bus.consumer import ConsumerSpec, DurableConsumer, HandlerTable
from ferry_shared.bus.delivery import Delivery
from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.messages import Event, MessageFailed, StepRef, decode_as
from ferry_shared.migrations import StepCommand
from ferry_shared.service import Bus, event_consumer_spec
from ferry_shared.settings import ServiceSettings
from ferry_testpeers.waiting import async_wait_for, eventually

from .service_runner import commands_spec

pytestmark = pytest.mark.nats

SERVICE = "evtest"
DURABLE = subjects.events_durable_name(SERVICE)
TIMEOUT = 10.0


class Alpha(Event, frozen=True, kw_only=True, tag="ferry.test.alpha.v1"):
    subject: ClassVar[str] = subjects.event_subject(SERVICE, "alpha")
    n: int


class Beta(Event, frozen=True, kw_only=True, tag="ferry.test.beta.v1"):
    subject: ClassVar[str] = subjects.event_subject(SERVICE, "beta")
    n: int


class Gamma(Event, frozen=True, kw_only=True, tag="ferry.test.gamma.v1"):
    subject: ClassVar[str] = subjects.event_subject(SERVICE, "gamma")
    n: int


class DiskStep(StepCommand, frozen=True, kw_only=True, tag="ferry.test.disk_step.v1"):
    subject: ClassVar[str] = subjects.command_subject(SERVICE, "disk_step")


class VmStepDone(Event, frozen=True, kw_only=True, tag="ferry.test.vm_step_done.v1"):
    subject: ClassVar[str] = subjects.event_subject(SERVICE, "vm_step_done")
    migration: str
    vm_id: str

    def step_ref(self) -> StepRef:
        return StepRef(migration=self.migration, vm_id=self.vm_id)


class Received:
    """What the handlers were given, as ``(type name, n)``."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int]] = []

    async def handle(self, event: Alpha | Beta | Gamma, delivery: Delivery) -> None:
        self.items.append((type(event).__name__, event.n))

    def table(self, *types: type[Alpha | Beta | Gamma]) -> HandlerTable:
        return dict.fromkeys(types, self.handle)


def events_spec(handlers: HandlerTable) -> ConsumerSpec:
    """The service's event consumer as run_service makes it, quicker to stop."""
    return dataclasses.replace(event_consumer_spec(SERVICE, handlers, ServiceSettings()), fetch_timeout=0.2)


async def durable_info(bus: Bus, stream: str = subjects.EVENTS_STREAM, durable: str = DURABLE) -> ConsumerInfo | None:
    try:
        return await bus.js.consumer_info(stream, durable)
    except NotFoundError:
        return None


@contextlib.asynccontextmanager
async def running(bus: Bus, handlers: HandlerTable, spec: ConsumerSpec) -> AsyncIterator[ConsumerInfo]:
    """Run a consumer for the block; yields its durable once the consumer pulls from it."""
    stop = asyncio.Event()
    task = asyncio.create_task(DurableConsumer(bus.js, bus.publisher, spec, handlers).run(stop))

    async def pulling() -> ConsumerInfo | None:
        if task.done():
            task.result()  # a consumer that failed to start fails the test with its error
        info = await durable_info(bus, spec.stream, spec.durable)
        return info if info is not None and info.num_waiting else None

    try:
        yield await async_wait_for(pulling, timeout=TIMEOUT, what="the consumer pulling")
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)


async def settled(bus: Bus, delivered: int) -> ConsumerInfo:
    """The durable once it has delivered ``delivered`` messages and has none pending or unacked."""

    async def probe() -> ConsumerInfo | None:
        info = await durable_info(bus)
        done = info is not None and info.delivered is not None and info.delivered.consumer_seq == delivered
        return info if done and info.num_pending == 0 and info.num_ack_pending == 0 else None

    return await async_wait_for(probe, timeout=TIMEOUT, what=f"{delivered} deliveries, all acked")


async def failures(bus: Bus) -> list[MessageFailed]:
    """Every MessageFailed in the events stream, read by a consumer of our own."""
    info = await bus.js.stream_info(subjects.EVENTS_STREAM, subjects_filter=subjects.MESSAGE_FAILED)
    count = (info.state.subjects or {}).get(subjects.MESSAGE_FAILED, 0)
    if not count:
        return []
    subscription = await bus.js.pull_subscribe(subjects.MESSAGE_FAILED, stream=subjects.EVENTS_STREAM)
    try:
        return [decode_as(msg.data, MessageFailed) for msg in await subscription.fetch(count, timeout=TIMEOUT)]
    finally:
        await subscription.unsubscribe()


async def test_a_filtered_event_consumer_receives_only_its_types(bus: Bus) -> None:
    received = Received()
    handlers = received.table(Alpha, Beta)
    async with running(bus, handlers, events_spec(handlers)) as info:
        assert sorted(info.config.filter_subjects or []) == sorted([Alpha.subject, Beta.subject])
        for event in (Alpha(message_id="a1", n=1), Gamma(message_id="g1", n=1), Beta(message_id="b1", n=1)):
            await bus.publisher.publish(event)
        await bus.publisher.publish(Alpha(message_id="a2", n=2))
        await eventually(lambda: len(received.items) == 3, timeout=TIMEOUT, what="three events")
        await settled(bus, delivered=3)  # Gamma was never delivered, not even to be acked
    assert sorted(received.items) == [("Alpha", 1), ("Alpha", 2), ("Beta", 1)]
    stream = await bus.js.stream_info(subjects.EVENTS_STREAM)
    assert stream.state.messages == 4, "events stay in the stream for other readers"


async def test_an_unknown_type_on_a_filtered_subject_is_acked_and_skipped(bus: Bus) -> None:
    received = Received()
    handlers = received.table(Alpha)
    async with running(bus, handlers, events_spec(handlers)):
        newer = {"type": "ferry.test.alpha.v2", "message_id": "a-v2", "n": "a later shape"}
        await bus.js.publish(Alpha.subject, msgspec.json.encode(newer))
        await bus.publisher.publish(Alpha(message_id="a1", n=1))
        info = await settled(bus, delivered=2)
    assert received.items == [("Alpha", 1)]
    assert info.num_redelivered == 0
    assert await failures(bus) == []


async def test_a_new_durable_starts_at_new_events_and_resumes_after_a_restart(bus: Bus) -> None:
    received = Received()
    alpha_only = received.table(Alpha)
    await bus.publisher.publish(Alpha(message_id="before", n=0))
    async with running(bus, alpha_only, events_spec(alpha_only)):
        await bus.publisher.publish(Alpha(message_id="a1", n=1))
        await settled(bus, delivered=1)
    assert received.items == [("Alpha", 1)], "the event from before the durable existed is not replayed"

    await bus.publisher.publish(Alpha(message_id="a2", n=2))  # while the service is down
    async with running(bus, alpha_only, events_spec(alpha_only)):
        await settled(bus, delivered=2)
    assert received.items == [("Alpha", 1), ("Alpha", 2)]

    # A new version of the service handles one more type: same durable, new filter, same position.
    await bus.publisher.publish(Beta(message_id="b1", n=1))
    await bus.publisher.publish(Alpha(message_id="a3", n=3))
    both = received.table(Alpha, Beta)
    async with running(bus, both, events_spec(both)) as info:
        assert sorted(info.config.filter_subjects or []) == sorted([Alpha.subject, Beta.subject])
        await settled(bus, delivered=4)
    assert received.items[2:] == [("Beta", 1), ("Alpha", 3)]


async def test_an_existing_durable_keeps_its_start_position_when_new_only_changes(bus: Bus) -> None:
    received = Received()
    alpha_only = received.table(Alpha)
    await bus.publisher.publish(Alpha(message_id="a0", n=0))
    async with running(bus, alpha_only, dataclasses.replace(events_spec(alpha_only), new_only=False)):
        await settled(bus, delivered=1)
    await bus.publisher.publish(Alpha(message_id="a1", n=1))
    async with running(bus, alpha_only, events_spec(alpha_only)) as info:  # new_only=True now
        assert info.config.deliver_policy == DeliverPolicy.ALL
        await settled(bus, delivered=2)
    assert received.items == [("Alpha", 0), ("Alpha", 1)]


async def test_a_failed_step_message_names_what_it_was_about(bus: Bus) -> None:
    async def refuse(command: DiskStep, delivery: Delivery) -> None:
        raise PermanentError("disk_gone", f"disk of {command.vm_id} is gone")

    async def give_up(event: VmStepDone, delivery: Delivery) -> None:
        raise TemporaryError("busy", "still busy", delay=0.1)

    commands = commands_spec(SERVICE, fetch_timeout=0.2)
    events = dataclasses.replace(events_spec({VmStepDone: give_up}), max_deliver=1)
    async with running(bus, {DiskStep: refuse}, commands), running(bus, {VmStepDone: give_up}, events):
        await bus.publisher.publish(DiskStep(message_id="s1", migration="mig-7", vm_id="vm-42"))
        await bus.publisher.publish(VmStepDone(message_id="d1", migration="mig-8", vm_id="vm-43"))

        async def both_failed() -> list[MessageFailed] | None:
            found = await failures(bus)
            return found if len(found) == 2 else None

        found = await async_wait_for(both_failed, timeout=TIMEOUT, what="two MessageFailed events")
    by_code = {failed.error_code: failed for failed in found}
    assert by_code["disk_gone"].about == StepRef(migration="mig-7", vm_id="vm-42")
    assert by_code["disk_gone"].reason == "disk of vm-42 is gone"
    assert by_code["disk_gone"].failed_type == DiskStep.type_tag()
    assert by_code["busy"].about == StepRef(migration="mig-8", vm_id="vm-43")
    assert by_code["busy"].reason == "still busy (gave up after 1 attempts)"
