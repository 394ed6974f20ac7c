"""Deterministic message ids: equal parts give equal ids, different parts never collide."""

from ferry_shared.ids import digest, message_id


def test_the_same_parts_give_the_same_id() -> None:
    assert message_id("connect", "vc", "3") == message_id("connect", "vc", "3") == "connect:vc:3"


def test_parts_holding_the_separator_do_not_collide() -> None:
    assert message_id("a:b", "c") != message_id("a", "b:c")
    assert message_id("a", "") != message_id("a")


def test_an_id_is_safe_in_a_header() -> None:
    assert "\n" not in message_id("name\n", "x y")


def test_a_digest_is_stable_and_sees_chunk_boundaries() -> None:
    assert digest(b"ab", b"c") == digest(b"ab", b"c")
    assert digest(b"ab", b"c") != digest(b"a", b"bc")
    assert len(digest(b"")) == 32
