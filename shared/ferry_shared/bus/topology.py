"""Creates Ferry's streams, consumers and KV buckets idempotently.

Every service calls :func:`ensure_topology` at start-up; whichever starts first
creates the streams and the rest find them in place.
"""

from datetime import timedelta

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from ferry_shared import subjects

EVENTS_MAX_AGE = timedelta(days=7)
DUPLICATE_WINDOW = timedelta(minutes=10)


def _stream_configs(replicas: int) -> list[StreamConfig]:
    return [
        StreamConfig(
            name=subjects.COMMANDS_STREAM,
            subjects=[subjects.ALL_COMMANDS],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW.total_seconds(),
            num_replicas=replicas,
        ),
        StreamConfig(
            name=subjects.EVENTS_STREAM,
            subjects=[subjects.ALL_EVENTS],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=EVENTS_MAX_AGE.total_seconds(),
            duplicate_window=DUPLICATE_WINDOW.total_seconds(),
            num_replicas=replicas,
        ),
    ]


async def ensure_topology(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create or update the command and event streams."""
    for config in _stream_configs(replicas):
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


async def ensure_kv(js: JetStreamContext, bucket: str, *, replicas: int = 1) -> KeyValue:
    """Return the KV bucket, creating it when missing."""
    try:
        return await js.key_value(bucket)
    except NotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=bucket, history=1, replicas=replicas, storage=StorageType.FILE)
        )


async def ensure_consumer(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    filter_subject: str = "",
    filter_subjects: tuple[str, ...] = (),
    ack_wait: float,
    max_deliver: int,
    max_ack_pending: int,
    new_only: bool = False,
) -> None:
    """Create or update a durable pull consumer with explicit acknowledgement.

    It reads ``filter_subject``, or every subject in ``filter_subjects``. With
    ``new_only`` a consumer created now starts at the next message instead of replaying
    the stream (an existing durable always resumes where it was). The consumer is named
    too, so a single filter travels in the request's subject and the server checks it
    against the permissions (a service may create its durable on its own commands only).
    """
    config = ConsumerConfig(
        name=durable,
        durable_name=durable,
        filter_subject=filter_subject or None,
        filter_subjects=list(filter_subjects) or None,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
        deliver_policy=DeliverPolicy.NEW if new_only else DeliverPolicy.ALL,
    )
    try:
        existing: ConsumerInfo | None = await js.consumer_info(stream, durable)
    except NotFoundError:
        existing = None
    if existing is not None:
        # The server refuses to change a durable's start position (``deliver policy can not be
        # updated``, a 500); keep it, so the durable resumes where it was.
        config.deliver_policy = existing.config.deliver_policy
        config.opt_start_seq = existing.config.opt_start_seq
        config.opt_start_time = existing.config.opt_start_time
    await js.add_consumer(stream, config)
