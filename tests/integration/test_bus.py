"""The JetStream helpers against a real nats-server: dedup, ack policy, redelivery, traces."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import ClassVar

import msgspec
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ferry_shared import subjects
from ferry_shared.bus.consumer import ConsumerSpec, DurableConsumer, HandlerTable
from ferry_shared.bus.delivery import Delivery
from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.messages import Command, MessageFailed, decode_as
from ferry_shared.service import Bus
from ferry_shared.tracing import current_trace_ids, tracer
from ferry_testpeers.waiting import async_wait_for, eventually

pytestmark = pytest.mark.nats

SERVICE = "testsvc"


class DoThing(Command, frozen=True, kw_only=True, tag="ferry.test.do_thing.v1"):
    subject: ClassVar[str] = subjects.command_subject(SERVICE, "do_thing")
    payload: str


def spec(**overrides: float) -> ConsumerSpec:
    values: dict[str, float] = {"ack_wait": 5.0, "max_deliver": 3, "fetch_timeout": 0.2}
    values.update(overrides)
    return ConsumerSpec(
        service=SERVICE,
        stream=subjects.COMMANDS_STREAM,
        durable=subjects.durable_name(SERVICE),
        filter_subject=subjects.commands_of(SERVICE),
        ack_wait=values["ack_wait"],
        max_deliver=int(values["max_deliver"]),
        fetch_timeout=values["fetch_timeout"],
    )


@contextlib.asynccontextmanager
async def running(bus: Bus, handlers: HandlerTable, consumer_spec: ConsumerSpec) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(DurableConsumer(bus.js, bus.publisher, consumer_spec, handlers).run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def failed_events(bus: Bus) -> list[MessageFailed]:
    subscription = await bus.js.pull_subscribe(subjects.MESSAGE_FAILED, stream=subjects.EVENTS_STREAM)
    found: list[MessageFailed] = []
    with contextlib.suppress(TimeoutError):
        for msg in await subscription.fetch(100, timeout=0.5):
            found.append(decode_as(msg.data, MessageFailed))
            await msg.ack()
    await subscription.unsubscribe()
    return found


async def test_command_round_trips_once_despite_a_repeated_msg_id(bus: Bus) -> None:
    received: list[tuple[str, int]] = []

    async def handle(command: DoThing, delivery: Delivery) -> None:
        received.append((command.payload, delivery.attempt))

    command = DoThing(message_id="thing-1", payload="hello")
    first = await bus.publisher.publish(command)
    second = await bus.publisher.publish(command)
    other = await bus.publisher.publish(DoThing(message_id="thing-2", payload="world"))
    assert not first.duplicate
    assert second.duplicate
    assert second.seq == first.seq
    assert other.seq == first.seq + 1

    async with running(bus, {DoThing: handle}, spec()):
        await eventually(lambda: len(received) == 2, timeout=10, what="two deliveries")
    assert sorted(received) == [("hello", 1), ("world", 1)]
    info = await bus.js.stream_info(subjects.COMMANDS_STREAM)
    assert info.state.messages == 0, "acked work-queue messages are removed"


async def test_temporary_error_is_redelivered_after_its_delay(bus: Bus) -> None:
    deliveries: list[tuple[int, float]] = []

    async def handle(command: DoThing, delivery: Delivery) -> None:
        deliveries.append((delivery.attempt, time.monotonic()))
        if delivery.attempt == 1:
            raise TemporaryError("busy", "the thing is busy", delay=1.5)

    await bus.publisher.publish(DoThing(message_id="retry-1", payload="x"))
    async with running(bus, {DoThing: handle}, spec()):
        await eventually(lambda: len(deliveries) == 2, timeout=10, what="redelivery")
    (first_attempt, first_at), (second_attempt, second_at) = deliveries
    assert (first_attempt, second_attempt) == (1, 2)
    assert second_at - first_at >= 1.4, "redelivered no sooner than the nak delay"
    assert await failed_events(bus) == []


async def test_permanent_error_terminates_and_publishes_a_failed_event(bus: Bus) -> None:
    attempts: list[int] = []

    async def handle(command: DoThing, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise PermanentError("vm_not_found", f"no VM named {command.payload}")

    await bus.publisher.publish(DoThing(message_id="perm-1", payload="ghost"))
    async with running(bus, {DoThing: handle}, spec(ack_wait=1.0)):
        events = await async_wait_for(lambda: failed_events(bus), timeout=10, what="a MessageFailed event")
    info = await bus.js.consumer_info(subjects.COMMANDS_STREAM, subjects.durable_name(SERVICE))
    assert (info.num_ack_pending, info.num_pending, info.num_redelivered) == (0, 0, 0)
    assert attempts == [1]
    (event,) = events
    assert event.error_code == "vm_not_found"
    assert event.reason == "no VM named ghost"
    assert event.failed_type == "ferry.test.do_thing.v1"
    assert event.service == SERVICE


async def test_repeated_temporary_errors_give_up_after_max_deliver(bus: Bus) -> None:
    attempts: list[int] = []

    async def handle(command: DoThing, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise TemporaryError("unreachable", "vCenter did not answer", delay=0.1)

    await bus.publisher.publish(DoThing(message_id="flaky-1", payload="x"))
    async with running(bus, {DoThing: handle}, spec(max_deliver=3)):
        (event,) = await async_wait_for(lambda: failed_events(bus), timeout=10, what="give-up event")
    assert attempts == [1, 2, 3]
    assert event.error_code == "unreachable"
    assert event.attempts == 3


async def test_malformed_message_is_terminated_with_a_failed_event(bus: Bus) -> None:
    handled: list[DoThing] = []

    async def handle(command: DoThing, delivery: Delivery) -> None:
        handled.append(command)

    await bus.js.publish(DoThing.subject, b'{"type": "ferry.test.do_thing.v1", "payload": 5}')
    async with running(bus, {DoThing: handle}, spec()):
        (event,) = await async_wait_for(lambda: failed_events(bus), timeout=10, what="malformed event")
    assert handled == []
    assert event.error_code == "malformed_message"
    assert "message_id" in event.reason or "payload" in event.reason


async def test_unknown_fields_are_ignored_by_readers(bus: Bus) -> None:
    handled: list[DoThing] = []

    async def handle(command: DoThing, delivery: Delivery) -> None:
        handled.append(command)

    newer = {"type": "ferry.test.do_thing.v1", "message_id": "n1", "payload": "p", "added_later": [1]}
    await bus.js.publish(DoThing.subject, msgspec.json.encode(newer))
    async with running(bus, {DoThing: handle}, spec()):
        await eventually(lambda: len(handled) == 1, timeout=10, what="delivery")
    assert handled == [DoThing(message_id="n1", payload="p")]


async def test_trace_context_crosses_publish_and_consume(bus: Bus, spans: InMemorySpanExporter) -> None:
    seen: list[tuple[str, str] | None] = []

    async def handle(command: DoThing, delivery: Delivery) -> None:
        seen.append(current_trace_ids())

    with tracer().start_as_current_span("plan start") as root:
        await bus.publisher.publish(DoThing(message_id="traced-1", payload="x"))
    async with running(bus, {DoThing: handle}, spec()):
        await eventually(lambda: len(seen) == 1, timeout=10, what="delivery")

    trace_id = format(root.get_span_context().trace_id, "032x")
    assert seen[0] is not None and seen[0][0] == trace_id
    by_name = {span.name: span for span in spans.get_finished_spans()}
    publish = by_name[f"{DoThing.subject} publish"]
    process = by_name[f"{DoThing.subject} process"]
    assert publish.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    assert process.context is not None and publish.context is not None
    assert process.context.trace_id == publish.context.trace_id == root.get_span_context().trace_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
