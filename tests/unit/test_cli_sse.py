"""The CLI's server-sent-events parsing and the planner change stream over HTTP (an
httpx transport that plays the planner)."""

import json
from collections.abc import Iterator

import httpx
import pytest

from ferry_cli.client import ApiClient, CliError
from ferry_cli.follow.http_planner import HttpChangeFeed
from ferry_cli.follow.ports import StreamLostError
from ferry_cli.follow.sse import SseEvent, parse_sse


def test_events_are_dispatched_on_blank_lines_with_comments_skipped_and_data_joined() -> None:
    text = (
        ": connected\n\n"
        'event: migration_vm\ndata: {"a":\ndata: 1}\nid: 7\n\n'
        ": heartbeat\n\n"
        "data:no-space\n\n"
        "event: ignored-without-data\n\n"
        "data: never dispatched, no blank line after it"
    )
    assert list(parse_sse(text.split("\n"))) == [
        SseEvent(event="migration_vm", data='{"a":\n1}', id="7"),
        SseEvent(event="message", data="no-space", id="7"),
    ]


def _planner_answering(handler: httpx.MockTransport) -> HttpChangeFeed:
    return HttpChangeFeed(ApiClient("http://planner.test", "planner", "FERRY_PLANNER_URL"), transport=handler)


def _stream(chunks: list[bytes]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url == "http://planner.test/api/v1/events"
        assert request.headers["accept"] == "text/event-stream"
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=httpx.ByteStream(b"".join(chunks))
        )

    return httpx.MockTransport(handle)


def test_the_feed_yields_json_changes_once_the_planner_has_subscribed() -> None:
    change = {"kind": "migration_vm", "name": "p-1", "vm": {"vm_id": "vm-1"}}
    feed = _planner_answering(
        _stream([
            b": connected\n\n",
            b"event: provider\ndata: " + json.dumps({"kind": "provider", "name": "v"}).encode() + b"\n\n",
            b"data: not json\n\n",
            b"event: migration_vm\r\ndata: " + json.dumps(change).encode() + b"\r\n\r\n",
        ])
    )  # fmt: skip
    with feed.open() as changes:
        assert list(changes) == [{"kind": "provider", "name": "v"}, change]


def test_a_stream_closed_before_its_first_line_is_lost() -> None:
    with (
        pytest.raises(StreamLostError, match="closed its event stream at once"),
        _planner_answering(_stream([])).open(),
    ):
        pass


def test_a_planner_that_cannot_be_reached_is_a_lost_stream() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(StreamLostError, match="ConnectError"), _planner_answering(httpx.MockTransport(refuse)).open():
        pass


def test_a_stream_that_breaks_mid_way_raises_stream_lost_while_iterating() -> None:
    class Breaking(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b": connected\n\n"
            yield b'data: {"kind": "resync"}\n\n'
            raise httpx.ReadError("connection reset")

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Breaking())

    seen: list[dict[str, object]] = []
    feed = _planner_answering(httpx.MockTransport(handle))
    with pytest.raises(StreamLostError, match="ReadError"), feed.open() as changes:
        seen.extend(changes)
    assert seen == [{"kind": "resync"}]


def test_an_error_answer_is_a_one_line_cli_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"reason": "not_ready", "message": "planner is starting"})

    with pytest.raises(CliError, match=r"refused its event stream: planner is starting \(not_ready\)"):  # noqa: SIM117
        with _planner_answering(httpx.MockTransport(handle)).open():
            pass
