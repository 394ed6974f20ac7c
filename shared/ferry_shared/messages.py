"""Message base types: frozen, tagged, versioned msgspec structs.

Commands are imperative (``CopyDisk``) and go to one handler; events are past tense
(``DiskCopied``) and go to anyone listening. Each concrete message declares a
versioned tag (``ferry.transfer.disk_copied.v1``) and the subject it travels on.
Schemas evolve by adding fields with defaults; a breaking change gets a new tag.
Readers are tolerant: unknown fields are ignored.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar, TypeVar, Union

import msgspec

from ferry_shared import subjects


def utc_now() -> datetime:
    """Current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class StepRef(msgspec.Struct, frozen=True, kw_only=True):
    """Which step of which VM of which migration a message is about (the key the
    planner's state machine is addressed by)."""

    migration: str
    vm_id: str


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every message on the bus.

    ``message_id`` is the deduplication id (``Nats-Msg-Id``): publishing the same
    logical message twice must reuse it, so senders derive it from what the message
    is about rather than drawing a fresh random id on every retry.
    """

    subject: ClassVar[str]
    message_id: str

    def step_ref(self) -> StepRef | None:
        """The migration step this message belongs to, copied into ``MessageFailed`` so
        the planner learns of the failure; None for messages outside any migration."""
        return None

    @classmethod
    def type_tag(cls) -> str:
        """The versioned tag written in the ``type`` field."""
        info = msgspec.inspect.type_info(cls)
        if not isinstance(info, msgspec.inspect.StructType) or info.tag is None:
            raise TypeError(f"{cls.__name__} has no message tag")
        return str(info.tag)


class Command(Message, frozen=True, kw_only=True):
    """Asks one service to do something; handled by exactly one consumer."""


class Event(Message, frozen=True, kw_only=True):
    """Says something happened; any service may read and replay it."""

    occurred_at: datetime = msgspec.field(default_factory=utc_now)


class MessageFailed(Event, frozen=True, kw_only=True, tag="ferry.bus.message_failed.v1"):
    """A command or event could not be handled and was terminated."""

    subject: ClassVar[str] = subjects.MESSAGE_FAILED
    failed_subject: str
    failed_type: str
    stream_sequence: int
    attempts: int
    service: str
    error_code: str
    reason: str
    about: StepRef | None = None  # the failed message's step_ref()


M = TypeVar("M", bound=Message)
_encoder = msgspec.json.Encoder()


def encode(message: Message) -> bytes:
    """Serialize a message to JSON bytes (with its ``type`` tag)."""
    return _encoder.encode(message)


def decoder_for(types: Sequence[type[Message]]) -> msgspec.json.Decoder[Message]:
    """A decoder that accepts exactly the given tagged message types."""
    if not types:
        raise ValueError("a decoder needs at least one message type")
    return msgspec.json.Decoder(Union[tuple(types)])  # noqa: UP007


def decode_as(data: bytes, message_type: type[M]) -> M:
    """Deserialize bytes known to hold one message type."""
    return msgspec.json.decode(data, type=message_type)
