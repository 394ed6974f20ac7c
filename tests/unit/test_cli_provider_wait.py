"""``ferry provider add``/``update`` waiting for the provider: re-read on each change about
it, done at ready or error, bounded by its deadline, and reading now and then when there is
no event stream. The planner is a hand-written fake behind the CLI's ``ChangeFeed`` port."""

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ferry_cli.commands.providers import endpoint
from ferry_cli.follow.ports import Change, StreamLostError, View
from ferry_cli.follow.provider_wait import LineDisplay, ProviderWait, WaitTimeoutError


def view(phase: str, *, generation: int = 1, reported: int = 1, message: str = "", reason: str = "") -> View:
    spec = {"name": "vc", "type": "vsphere", "url": "https://vc/sdk", "path": "", "context": "", "in_cluster": False}
    status = {"phase": phase, "generation": reported, "message": message, "reason": reason, "counts": {}}
    return {"spec": spec, "generation": generation, "status": status}


class FakeFeed:
    """Plays ``changes`` once opened, then stays quiet until ``release`` (or fails to open)."""

    def __init__(self, changes: list[Change] | None = None, *, fails: bool = False, hangs: bool = False) -> None:
        self.changes = changes or []
        self.fails = fails
        self.hangs = hangs
        self.release = threading.Event()

    @contextlib.contextmanager
    def open(self) -> Iterator[Iterator[Change]]:
        if self.hangs:
            self.release.wait(timeout=10)  # a proxy that holds the request and never answers
        if self.fails:
            raise StreamLostError("ConnectError on http://planner/api/v1/events")
        yield self._play()

    def _play(self) -> Iterator[Change]:
        yield from self.changes
        self.release.wait(timeout=10)


class Reads:
    """``GET /providers/{name}`` answering the given views in turn (the last one repeats)."""

    def __init__(self, *views: View) -> None:
        self.views = list(views)
        self.count = 0

    def __call__(self, name: str) -> View:
        assert name == "vc"
        self.count += 1
        return self.views[min(self.count, len(self.views)) - 1]


def waiter(feed: FakeFeed, reads: Reads, lines: list[str], **options: Any) -> ProviderWait:
    return ProviderWait(feed=feed, read=reads, display=LineDisplay(lines.append), **options)


def test_the_provider_is_read_again_on_each_change_about_it_until_it_is_in_error() -> None:
    feed = FakeFeed([{"kind": "provider", "name": "other"}, {"kind": "plan_status", "name": "vc"},
                     {"kind": "provider", "name": "vc"}, {"kind": "inventory", "name": "vc"}])  # fmt: skip
    refused = view("error", message="vCenter at vc:443 refused the user name 'u'", reason="invalid_login")
    reads = Reads(view("connecting"), refused)
    lines: list[str] = []
    try:
        final = waiter(feed, reads, lines).run(lambda: view("connecting", reported=0))
    finally:
        feed.release.set()
    assert final == refused
    assert reads.count == 2, "only the two changes about vc are read again"
    assert lines == ["provider vc: connecting",
                     "provider vc: error: vCenter at vc:443 refused the user name 'u' (invalid_login)"]  # fmt: skip


def test_a_status_of_the_settings_before_the_change_does_not_end_the_wait() -> None:
    feed = FakeFeed([{"kind": "inventory", "name": "vc"}, {"kind": "resync"}])
    reads = Reads(view("ready", generation=2, reported=1), view("ready", generation=2, reported=2))
    try:
        final = waiter(feed, reads, []).run(lambda: view("ready", generation=2, reported=1))
    finally:
        feed.release.set()
    assert final["status"]["generation"] == 2 and reads.count == 2


def test_a_provider_that_never_settles_ends_the_wait_at_its_deadline() -> None:
    feed = FakeFeed()
    try:
        with pytest.raises(WaitTimeoutError, match="provider vc is still connecting after 0s; it goes on connecting"):
            waiter(feed, Reads(view("connecting")), [], timeout=0.3, poll_every=0.05).run(lambda: view("connecting"))
    finally:
        feed.release.set()


def test_without_an_event_stream_the_provider_is_read_now_and_then() -> None:
    reads = Reads(view("connecting"), view("connecting"), view("ready"))
    lines: list[str] = []
    final = waiter(FakeFeed(fails=True), reads, lines, poll_every=0.01).run(lambda: view("connecting"))
    assert final["status"]["phase"] == "ready" and reads.count == 3
    assert lines[0].startswith("no event stream (ConnectError on http://planner/api/v1/events)")
    assert lines[-1] == "provider vc: ready"


def test_a_kubernetes_provider_is_listed_by_its_api_server_and_context() -> None:
    spec = {"name": "k", "type": "kubernetes", "url": "https://10.0.0.1:6443", "context": "main", "path": "",
            "in_cluster": False}  # fmt: skip
    assert endpoint({"spec": spec}) == "https://10.0.0.1:6443 (main)"
    assert endpoint({"spec": spec | {"url": "", "context": "", "in_cluster": True}}) == "in-cluster"
    assert endpoint({"spec": spec | {"type": "local", "url": "", "path": "/srv/vms"}}) == "/srv/vms"


def test_a_stream_that_never_opens_delays_the_change_only_by_open_wait_then_the_provider_is_read() -> None:
    feed = FakeFeed(hangs=True)
    reads = Reads(view("ready"))
    lines: list[str] = []
    started = threading.Event()

    def start() -> View:
        started.set()
        return view("connecting", reported=0)

    try:
        final = waiter(feed, reads, lines, open_wait=0.05, poll_every=0.01, timeout=30).run(start)
    finally:
        feed.release.set()
    assert started.is_set() and final == view("ready")
    assert lines[0] == "no event stream (not opened within 0.05s); reading the provider every 0.01s"
