"""The shared list-then-watch against a scripted list call (the blocking client's side
of the API server): what it hands over after a list, a watch, a 410 Gone, a silent
watch and dropped connections."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from ferry_shared.kubernetes.list_watch import Body, ListWatch, body

WITHIN = 5.0


def pod(name: str, version: str) -> Body:
    return {"metadata": {"name": name, "resourceVersion": version}}


def page(items: list[Body], version: str, token: str = "") -> "ListResponse":
    metadata = {"resourceVersion": version, **({"continue": token} if token else {})}
    return ListResponse(json.dumps({"metadata": metadata, "items": items}).encode())


def event(kind: str, obj: Body) -> str:
    return json.dumps({"type": kind, "object": obj})


def gone() -> str:
    return event("ERROR", {"code": 410, "reason": "Expired", "message": "too old resource version"})


@dataclass
class ListResponse:
    data: bytes

    def release_conn(self) -> None:
        pass


@dataclass
class WatchResponse:
    """A watch's body: its lines, then what ends it (None: the server closes it)."""

    lines: list[str]
    ends_with: Exception | None = None
    status: int = 200

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for line in self.lines:
            yield (line + "\n").encode()
        if self.ends_with is not None:
            raise self.ends_with

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class ListError(Exception):
    pass


@dataclass
class Server:
    """Answers list and watch calls from a script; when the script is out, a watch sets
    ``idle`` and blocks until the test ends it."""

    lists: list[ListResponse | Exception]
    watches: list[WatchResponse]
    calls: list[str] = field(default_factory=list)
    idle: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def __call__(self, **query: Any) -> ListResponse | WatchResponse:
        if query.get("watch"):
            self.calls.append(f"watch from {query['resource_version']}")
            if self.watches:
                return self.watches.pop(0)
            self.idle.set()
            self.done.wait(WITHIN)
            return WatchResponse([])
        self.calls.append(f"list {query.get('_continue') or ''}".rstrip())
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class Seen:
    items: list[str] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)

    def listed(self, objects: list[Body]) -> None:
        self.items.append("listed " + ",".join(obj["metadata"]["name"] for obj in objects))

    def changed(self, kind: str, obj: Body) -> None:
        self.items.append(f"{kind} {obj['metadata']['name']}")

    def failed(self, error: Exception) -> None:
        self.failures.append(error)
        self.ended.set()


def run(server: Server, *, resource_version: str = "") -> Seen:
    """Run a list-then-watch until the script is out (or it failed); what it handed over."""
    seen = Seen(ended=server.idle)  # a failure ends the run too
    feed = ListWatch(
        "test",
        server,
        decode=body,
        listed=seen.listed,
        changed=seen.changed,
        failed=seen.failed,
        resource_version=resource_version,
    )
    feed.start()
    server.idle.wait(WITHIN)
    feed.stop()
    server.done.set()
    feed.join(WITHIN)
    assert not feed.alive
    return seen


def test_a_list_then_its_changes_are_handed_over_and_the_watch_resumes_from_the_last_version() -> None:
    server = Server(
        lists=[page([pod("a", "5")], "10")],
        watches=[
            WatchResponse([event("ADDED", pod("b", "11")), event("BOOKMARK", pod("", "12"))]),
            WatchResponse([event("DELETED", pod("a", "13"))]),
        ],
    )
    seen = run(server)
    assert seen.items == ["listed a", "ADDED b", "DELETED a"]
    assert server.calls == ["list", "watch from 10", "watch from 12", "watch from 13"]
    assert seen.failures == []


def test_a_list_is_read_in_pages_and_listed_again_when_its_pages_expire() -> None:
    expired = ApiException(status=410, reason="Expired")
    server = Server(
        lists=[
            page([pod("a", "1")], "9", "t1"),
            expired,
            page([pod("a", "1")], "10", "t2"),
            page([pod("b", "2")], "10"),
        ],
        watches=[],
    )
    seen = run(server)
    assert seen.items == ["listed a,b"]
    assert server.calls == ["list", "list t1", "list", "list t2", "watch from 10"]


def test_a_gone_version_is_answered_with_a_new_list() -> None:
    server = Server(lists=[page([pod("a", "20")], "20")], watches=[WatchResponse([gone()])])
    seen = run(server, resource_version="1")
    assert seen.items == ["listed a"]
    assert server.calls == ["watch from 1", "list", "watch from 20"]


def test_a_silent_watch_is_resumed_however_often_it_happens() -> None:
    timeout = ReadTimeoutError(cast(HTTPConnectionPool, None), "/", "read timed out")
    silent = [WatchResponse([], timeout) for _ in range(3)]
    server = Server(lists=[page([], "10")], watches=silent)
    seen = run(server)
    assert seen.failures == []
    assert server.calls == ["list", *["watch from 10"] * 4]


def test_a_dropped_watch_is_resumed_once_and_a_second_drop_in_a_row_fails() -> None:
    dropped = ProtocolError("Connection broken")
    server = Server(
        lists=[page([], "10")],
        watches=[
            WatchResponse([event("ADDED", pod("a", "11"))], dropped),
            WatchResponse([event("ADDED", pod("b", "12"))], dropped),  # an event in between: resumed again
            WatchResponse([], dropped),  # dropped again with nothing in between: a failure
        ],
    )
    seen = run(server)
    assert seen.items == ["listed ", "ADDED a", "ADDED b"]
    assert [type(error) for error in seen.failures] == [ProtocolError]
    assert server.calls == ["list", "watch from 10", "watch from 11", "watch from 12"]


def test_a_failed_list_is_handed_over() -> None:
    server = Server(lists=[ApiException(status=403, reason="Forbidden")], watches=[])
    seen = run(server)
    assert [getattr(error, "status", None) for error in seen.failures] == [403]


def test_objects_the_decoder_skips_are_not_handed_over() -> None:
    server = Server(
        lists=[page([pod("a", "1"), pod("skip", "2")], "10")],
        watches=[WatchResponse([event("ADDED", pod("skip", "11"))])],
    )
    seen = Seen()

    def decode(raw: msgspec.Raw | Body) -> Body | None:
        obj = body(raw)
        return None if obj["metadata"]["name"] == "skip" else obj

    feed = ListWatch("test", server, decode=decode, listed=seen.listed, changed=seen.changed, failed=seen.failed)
    feed.start()
    server.idle.wait(WITHIN)
    feed.stop()
    server.done.set()
    feed.join(WITHIN)
    assert seen.items == ["listed a"]
