"""Following ``VmCancelRequested`` on the events stream, across NATS restarts (a background job).

Every transfer worker must hear every cancel, so each reads the events stream through a
consumer of its own (a durable one would hand each event to one worker only). The events
stream keeps its messages on disk for days, so the stream itself is the durable record of
the cancels; what must survive a NATS restart is only where this worker is in it, and that
the worker keeps:

* the first consumer starts ``since`` seconds back (:class:`FeedPosition`), so a worker
  started or restarted after a cancel, even when no worker ran then, learns it;
* each later consumer starts right after the last stream sequence this worker saw.

The consumer is an ephemeral pull consumer, in memory on the server and removed by it after
``inactive`` seconds without a pull. When the server loses it (a restart, a long
disconnection) or a fetch fails otherwise, :func:`follow_cancellations` waits a moment and
creates the next one from where it was: nats.py's own ordered consumer cannot do that for a
consumer that started at a time (the server answers its re-creation with error 10094
forever), so this module does not use it.

Each cancel goes to the :class:`~ferry_transfer.adapters.cancellation.CancellationRegistry`,
which stops that VM's copies in flight here and remembers it; the registry is marked caught
up once the first consumer has replayed the past.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ferry_shared import subjects
from ferry_shared.messages import decode_as
from ferry_shared.migrations import VmCancelRequested
from ferry_shared.retry import Backoff, pause
from ferry_transfer.adapters.cancellation import CancellationRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedOptions:
    """How far back a worker looks, and how it reads."""

    since: float = 3 * 24 * 3600.0
    """Seconds of past cancels the first consumer replays."""
    batch: int = 256
    """Events fetched at once."""
    fetch_timeout: float = 1.0
    """Seconds one fetch waits for an event."""
    retry_delay: float = 0.5
    """Seconds before the first new consumer after a failure; doubled up to ``max_retry_delay``."""
    max_retry_delay: float = 2.0
    inactive: float = 60.0
    """Seconds without a pull after which the server removes a consumer (a dead worker's)."""


class FeedPosition:
    """Where this worker is in the events stream: the config of its next consumer."""

    def __init__(self, since: datetime) -> None:
        self.since = since
        self.last_sequence = 0
        """The stream sequence of the last event read (0: none yet)."""

    def saw(self, sequence: int) -> None:
        self.last_sequence = max(self.last_sequence, sequence)

    def stream_reset(self, stream_last_sequence: int) -> bool:
        """Whether the stream was recreated under us (it ends before what we read); if so, start over by time."""
        if stream_last_sequence >= self.last_sequence:
            return False
        self.last_sequence = 0
        return True

    def consumer_config(self, *, inactive: float) -> ConsumerConfig:
        config = ConsumerConfig(
            filter_subject=VmCancelRequested.subject,
            ack_policy=AckPolicy.NONE,
            mem_storage=True,
            inactive_threshold=inactive,
        )
        if self.last_sequence:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = self.last_sequence + 1
        else:
            config.deliver_policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = self.since
        return config


async def follow_cancellations(
    js: JetStreamContext, registry: CancellationRegistry, stop: asyncio.Event, *, options: FeedOptions
) -> None:
    """Feed every ``VmCancelRequested`` of the last ``options.since`` seconds, and every later one, to
    ``registry`` until ``stop`` is set, with a new consumer whenever the last one failed."""
    position = FeedPosition(datetime.now(UTC) - timedelta(seconds=options.since))
    backoff = Backoff(options.retry_delay, options.max_retry_delay)
    while not stop.is_set():
        try:
            await _read_one_consumer(js, registry, position, stop, options)
        except (nats.errors.Error, OSError, TimeoutError) as error:  # a bug is no reason to retry: it ends the job
            delay = backoff.next()
            log.warning(
                "following cancellations failed (%s: %s); a new consumer from stream sequence %d in %.1fs",
                type(error).__name__,
                error,
                position.last_sequence + 1,
                delay,
            )
            await pause(delay, stop=stop)
        else:
            backoff.reset()


async def _read_one_consumer(
    js: JetStreamContext,
    registry: CancellationRegistry,
    position: FeedPosition,
    stop: asyncio.Event,
    options: FeedOptions,
) -> None:
    """Create a consumer at ``position`` and read it until ``stop`` (returns) or it fails (raises)."""
    if position.last_sequence:
        stream = await js.stream_info(subjects.EVENTS_STREAM)
        if position.stream_reset(stream.state.last_seq):
            log.warning("the events stream was recreated; replaying cancellations from %s", position.since)
    info = await js.add_consumer(subjects.EVENTS_STREAM, position.consumer_config(inactive=options.inactive))
    if info.num_pending == 0:
        registry.mark_caught_up()
    subscription = await js.pull_subscribe_bind(info.name, stream=subjects.EVENTS_STREAM)
    log.info("following cancellations from stream sequence %d (%s)", position.last_sequence + 1, info.name)
    try:
        while not stop.is_set():
            try:
                batch = await subscription.fetch(options.batch, timeout=options.fetch_timeout)
            except TimeoutError:  # nothing new (nats raises both its own subclass and the builtin)
                registry.mark_caught_up()
                continue
            for msg in batch:
                _apply(msg, registry, position)
    finally:
        await subscription.unsubscribe()


def _apply(msg: Msg, registry: CancellationRegistry, position: FeedPosition) -> None:
    try:
        event = decode_as(msg.data, VmCancelRequested)
    except msgspec.DecodeError as error:
        log.warning("ignoring an undecodable message on %s: %s", msg.subject, error)
    else:
        registry.cancel(event.migration, event.vm_id)
    metadata = msg.metadata
    position.saw(metadata.sequence.stream)
    if metadata.num_pending == 0:
        registry.mark_caught_up()
