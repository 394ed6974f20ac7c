"""A durable JetStream pull consumer that ends every message deliberately.

Each message is decoded into one of the handler table's types and given to its
handler inside a CONSUMER span that continues the publisher's trace. Then:

* the handler returns → **ack**;
* it raises :class:`TemporaryError` (or anything unexpected) → **nak with delay**,
  until the last allowed attempt, which is treated as permanent;
* it raises :class:`PermanentError`, or the message cannot be decoded → a
  ``MessageFailed`` event is published and the message is **terminated**.

An event consumer reads a shared stream in which most types are someone else's
business: with ``ignore_unknown`` a message whose type has no handler is acked unread.

The fetch loop ends only at the stop. A fetch that times out is an idle moment; any other
failure (the consumer or its stream deleted, the server gone) is logged, makes
:attr:`DurableConsumer.health` not ready with the reason, and is retried with back-off
(``fetch_retry_initial`` doubling to ``fetch_retry_max``), re-creating the durable and
binding to it again; the first fetch that works makes it ready again.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind, Status, StatusCode

from ferry_shared.bus.delivery import Delivery
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_consumer
from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.messages import Message, MessageFailed, StepRef, decoder_for
from ferry_shared.readiness import Health
from ferry_shared.retry import Backoff, pause
from ferry_shared.tracing import extract_context, tracer

log = logging.getLogger(__name__)

MIN_ACK_PENDING = 1024
"""Unacked messages one durable allows across ALL its replicas: room for many transfer
workers, each with its ranges in flight."""

Handler = Callable[[Any, Delivery], Awaitable[None]]
"""An async handler taking one message type and its delivery."""

HandlerTable = Mapping[type[Message], Handler]


@dataclass(frozen=True)
class ConsumerSpec:
    """Where a consumer reads from and how patient it is."""

    service: str
    stream: str
    durable: str
    filter_subject: str = ""
    filter_subjects: tuple[str, ...] = ()
    ignore_unknown: bool = False
    new_only: bool = False  # a newly created durable starts at the next message (see ensure_consumer)
    ack_wait: float = 30.0
    max_deliver: int = 5
    max_in_flight: int = 16
    unexpected_error_delay: float = 5.0
    fetch_timeout: float = 1.0
    fetch_retry_initial: float = 0.5
    fetch_retry_max: float = 15.0
    drain_timeout: float = 20.0


async def ensure_durable(js: JetStreamContext, spec: ConsumerSpec) -> None:
    """Create (or update) the server-side durable consumer ``spec`` describes; :meth:`DurableConsumer.run`
    does it first, and a service that must not miss a message before it runs can do it earlier."""
    await ensure_consumer(
        js,
        stream=spec.stream,
        durable=spec.durable,
        filter_subject=spec.filter_subject,
        filter_subjects=spec.filter_subjects,
        ack_wait=spec.ack_wait,
        # The server's limit sits above ours so the last attempt is ours to end.
        max_deliver=spec.max_deliver + 1,
        max_ack_pending=max(spec.max_in_flight * 4, MIN_ACK_PENDING),
        new_only=spec.new_only,
    )


class DurableConsumer:
    """Runs a handler table over one durable consumer until told to stop."""

    def __init__(
        self,
        js: JetStreamContext,
        publisher: Publisher,
        spec: ConsumerSpec,
        handlers: HandlerTable,
    ) -> None:
        self._js = js
        self._publisher = publisher
        self._spec = spec
        self._handlers = dict(handlers)
        self._decoder = decoder_for(list(self._handlers))
        self._known_tags = {message_type.type_tag() for message_type in self._handlers}
        self._tasks: set[asyncio.Task[None]] = set()
        self.health = Health(not_ready=f"not yet reading {spec.stream} through {spec.durable}")
        """Ready while fetching works; a :data:`~ferry_shared.readiness.ReadinessCheck` is ``health.check``."""

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and handle messages until ``stop`` is set, then finish those in flight."""
        spec = self._spec
        backoff = Backoff(spec.fetch_retry_initial, spec.fetch_retry_max, jitter=spec.fetch_retry_initial)
        subscription: JetStreamContext.PullSubscription | None = None
        try:
            while not stop.is_set():
                free = spec.max_in_flight - len(self._tasks)
                if free <= 0:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    if subscription is None:
                        subscription = await self._subscribe()
                    batch = await self._fetch(subscription, free)
                except _FetchFailedError as failure:
                    if subscription is not None:
                        await _unsubscribe(subscription)
                        subscription = None
                    self._failed(failure, backoff)
                    await pause(backoff.next(), stop=stop)
                    continue
                if not self.health.is_ready:
                    log.info("%s: fetching from %s works again", spec.durable, spec.stream)
                self.health.ready()
                backoff.reset()
                for msg in batch:
                    task = asyncio.create_task(self._handle(msg), name=f"handle {msg.subject}")
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            await self._drain()
            if subscription is not None:
                await _unsubscribe(subscription)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        """Create (or update) the durable and bind to it."""
        spec = self._spec
        try:
            await ensure_durable(self._js, spec)
            return await self._js.pull_subscribe_bind(spec.durable, stream=spec.stream)
        except Exception as error:
            raise _FetchFailedError(f"cannot bind to {spec.stream}/{spec.durable}", error) from error

    async def _fetch(self, subscription: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
        """Up to ``batch`` messages; none when the fetch timed out (nothing to do)."""
        try:
            return await subscription.fetch(batch, timeout=self._spec.fetch_timeout)
        except TimeoutError:  # nats raises both its own subclass and the builtin
            return []
        except Exception as error:
            raise _FetchFailedError(f"fetching from {self._spec.stream}/{self._spec.durable} fails", error) from error

    def _failed(self, failure: "_FetchFailedError", backoff: Backoff) -> None:
        """Log a failed fetch (with its traceback the first time in a row) and say so in ``health``."""
        cause = failure.cause
        reason = f"{failure.what}: {type(cause).__name__}: {cause}"
        self.health.not_ready(reason)
        log.warning(
            "%s; retrying (%d failures in a row)",
            reason,
            backoff.failures + 1,
            exc_info=cause if backoff.failures == 0 else None,
        )

    async def _drain(self) -> None:
        """Let in-flight handlers finish for ``drain_timeout``; cancel the rest (they are
        nak'd and so redelivered to another consumer)."""
        if not self._tasks:
            return
        _, unfinished = await asyncio.wait(self._tasks, timeout=self._spec.drain_timeout)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("cancelled %d unfinished handlers on shutdown", len(unfinished))
            await asyncio.wait(unfinished)

    async def _handle(self, msg: Msg) -> None:
        attempt = msg.metadata.num_delivered or 1
        with tracer().start_as_current_span(
            f"{msg.subject} process",
            context=extract_context(msg.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": self._spec.durable,
                "messaging.message.delivery_attempt": attempt,
            },
        ) as span:
            if self._spec.ignore_unknown and _type_tag(msg.data) not in self._known_tags:
                await msg.ack()
                return
            try:
                message = self._decoder.decode(msg.data)
            except msgspec.DecodeError as error:
                span.set_status(Status(StatusCode.ERROR, "malformed message"))
                await self._fail(msg, attempt, "unknown", code="malformed_message", reason=str(error))
                return
            type_tag = message.type_tag()
            span.set_attribute("ferry.message.type", type_tag)
            handler = self._handlers[type(message)]
            delivery = Delivery(msg, attempt=attempt, ack_wait=self._spec.ack_wait)
            step = message.step_ref()
            try:
                await handler(message, delivery)
            except asyncio.CancelledError:
                await msg.nak()
                raise
            except PermanentError as error:
                span.set_status(Status(StatusCode.ERROR, error.code))
                await self._fail(msg, attempt, type_tag, code=error.code, reason=error.message, step=step)
            except TemporaryError as error:
                span.set_status(Status(StatusCode.ERROR, error.code))
                await self._retry(
                    msg,
                    attempt,
                    type_tag,
                    code=error.code,
                    reason=error.message,
                    delay=error.delay,
                    step=step,
                )
            except Exception as error:
                log.exception("unexpected error handling %s (attempt %d)", type_tag, attempt)
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, "unexpected_error"))
                reason = f"{type(error).__name__}: {error}"
                delay = self._spec.unexpected_error_delay
                await self._retry(
                    msg, attempt, type_tag, code="unexpected_error", reason=reason, delay=delay, step=step
                )
            else:
                await msg.ack()

    async def _retry(
        self,
        msg: Msg,
        attempt: int,
        type_tag: str,
        *,
        code: str,
        reason: str,
        delay: float,
        step: StepRef | None,
    ) -> None:
        if attempt >= self._spec.max_deliver:
            reason = f"{reason} (gave up after {attempt} attempts)"
            await self._fail(msg, attempt, type_tag, code=code, reason=reason, step=step)
            return
        log.warning("%s attempt %d failed (%s: %s); retrying in %.1fs", type_tag, attempt, code, reason, delay)
        await msg.nak(delay=delay)

    async def _fail(
        self,
        msg: Msg,
        attempt: int,
        type_tag: str,
        *,
        code: str,
        reason: str,
        step: StepRef | None = None,
    ) -> None:
        """Publish MessageFailed, then terminate (a crash in between only re-publishes the
        same deduplicated event)."""
        sequence = msg.metadata.sequence.stream
        log.error("%s failed permanently (%s: %s)", type_tag, code, reason)
        await self._publisher.publish(
            MessageFailed(
                message_id=f"failed:{msg.metadata.stream}:{sequence}",
                failed_subject=msg.subject,
                failed_type=type_tag,
                stream_sequence=sequence,
                attempts=attempt,
                service=self._spec.service,
                error_code=code,
                reason=reason,
                about=step,
            )
        )
        await msg.term()


class _FetchFailedError(Exception):
    """A fetch (or the binding before it) failed for another reason than a timeout."""

    def __init__(self, what: str, cause: Exception) -> None:
        super().__init__(f"{what}: {cause}")
        self.what = what
        self.cause = cause


async def _unsubscribe(subscription: JetStreamContext.PullSubscription) -> None:
    """Drop a subscription; failing to (the connection is gone) only matters to the log."""
    try:
        await subscription.unsubscribe()
    except (nats.errors.Error, OSError) as error:
        log.warning("could not unsubscribe from a pull consumer: %s: %s", type(error).__name__, error)


class _TypeOnly(msgspec.Struct):
    type: str = ""


_type_decoder = msgspec.json.Decoder(_TypeOnly)


def _type_tag(data: bytes) -> str:
    """The ``type`` field of an encoded message, or "" when there is none."""
    try:
        return _type_decoder.decode(data).type
    except msgspec.DecodeError:
        return ""
