"""Message contracts: tags, encoding, tolerant decoding."""

import re
from typing import ClassVar

import msgspec
import pytest

from ferry_shared import subjects
from ferry_shared.inventory import inventory_key, parse_inventory_key
from ferry_shared.messages import Command, Event, MessageFailed, decode_as, decoder_for, encode


class ResizeThing(Command, frozen=True, kw_only=True, tag="ferry.test.resize_thing.v1"):
    subject: ClassVar[str] = subjects.command_subject("test", "resize_thing")
    size: int


class ThingResized(Event, frozen=True, kw_only=True, tag="ferry.test.thing_resized.v1"):
    subject: ClassVar[str] = subjects.event_subject("test", "thing_resized")
    size: int
    note: str = ""


def test_encoded_message_carries_its_versioned_tag() -> None:
    body = msgspec.json.decode(encode(ResizeThing(message_id="r1", size=3)))
    assert body == {"type": "ferry.test.resize_thing.v1", "message_id": "r1", "size": 3}
    assert ResizeThing.type_tag() == "ferry.test.resize_thing.v1"


def test_decoder_picks_the_type_from_the_tag() -> None:
    decoder = decoder_for([ResizeThing, ThingResized])
    event = ThingResized(message_id="e1", size=5)
    assert decoder.decode(encode(event)) == event
    assert decoder.decode(encode(ResizeThing(message_id="c1", size=1))) == ResizeThing(message_id="c1", size=1)


def test_older_readers_ignore_fields_added_later_and_newer_readers_default_them() -> None:
    newer = b'{"type":"ferry.test.resize_thing.v1","message_id":"c2","size":2,"priority":"high"}'
    assert decode_as(newer, ResizeThing) == ResizeThing(message_id="c2", size=2)
    older = b'{"type":"ferry.test.thing_resized.v1","message_id":"e2","size":2,"occurred_at":"2026-11-27T00:00:00Z"}'
    assert decode_as(older, ThingResized).note == ""


def test_decoder_rejects_unknown_tags_and_wrong_types() -> None:
    decoder = decoder_for([ResizeThing])
    with pytest.raises(msgspec.ValidationError, match="type"):
        decoder.decode(b'{"type":"ferry.test.other.v1","message_id":"x"}')
    with pytest.raises(msgspec.ValidationError, match=r"\$\.size"):
        decoder.decode(b'{"type":"ferry.test.resize_thing.v1","message_id":"x","size":"big"}')


def test_messages_are_frozen() -> None:
    command = ResizeThing(message_id="c3", size=1)
    with pytest.raises(AttributeError):
        command.size = 2  # type: ignore[misc]


def test_failed_event_travels_on_the_bus_failure_subject() -> None:
    assert MessageFailed.subject == "ferry.evt.bus.message_failed"
    assert subjects.MESSAGE_FAILED.startswith(subjects.EVENTS_PREFIX)


@pytest.mark.parametrize("identifier", ["vm-42", "ns/name", "a.b", "weird name=1~ü", "x=2f"])
def test_inventory_keys_round_trip_any_id(identifier: str) -> None:
    key = inventory_key("vc", "vm", identifier)
    assert re.fullmatch(r"[-/_=.a-zA-Z0-9]+", key)
    assert parse_inventory_key(key) == ("vc", "vm", identifier)
