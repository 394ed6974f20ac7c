"""Publishing messages with a dedup id, their type and the caller's trace context."""

import logging

from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry.trace import SpanKind

from ferry_shared import subjects
from ferry_shared.messages import Message, encode
from ferry_shared.tracing import inject_headers, tracer

log = logging.getLogger(__name__)


class Publisher:
    """Publishes Ferry messages to JetStream.

    Every publish sets ``Nats-Msg-Id`` from the message's id, so a retried publish
    inside the stream's duplicate window is stored once.
    """

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def publish(self, message: Message, *, subject: str | None = None) -> PubAck:
        """Publish ``message`` on its subject (or ``subject``); returns the stream ack."""
        target = subject or message.subject
        with tracer().start_as_current_span(
            f"{target} publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": target,
                "messaging.message.id": message.message_id,
                "ferry.message.type": message.type_tag(),
            },
        ):
            headers = inject_headers(
                {
                    subjects.MSG_ID_HEADER: message.message_id,
                    subjects.MESSAGE_TYPE_HEADER: message.type_tag(),
                }
            )
            ack = await self._js.publish(target, encode(message), headers=headers)
        if ack.duplicate:
            log.debug("duplicate publish of %s ignored by the stream", message.message_id)
        return ack
