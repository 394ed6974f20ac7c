"""Following a migration: recorded planner changes in, bars/lines/summary and exit code
out; a resync, a dropped stream, a failed VM, Ctrl-C. The planner is a hand-written fake
behind the CLI's own ports (``ChangeFeed``, ``MigrationsApi``)."""

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from rich.console import Console

from ferry_cli.client import CliError, UnreachableError
from ferry_cli.follow.follower import Follower, Reconnect
from ferry_cli.follow.jsonlines import JsonLinesDisplay
from ferry_cli.follow.live import LiveDisplay
from ferry_cli.follow.ports import Change, StreamLostError, View
from ferry_cli.follow.run import FollowFormat, follow_migration
from ferry_cli.follow.state import EXIT_CANCELED, EXIT_FAILED, EXIT_SUCCEEDED, exit_code

MiB = 2**20
T0 = "2025-01-01T10:00:00+00:00"


def disk(key: int, done: int, total: int, completed: bool = False) -> dict[str, Any]:
    """A disk copied whole (no CBT): every byte covered is read."""
    return {"key": key, "file_name": f"[LocalDS_0] app/app_{key}.vmdk", "bytes_total": total, "bytes_done": done,
            "completed": completed, "bytes_read": done, "bytes_to_read": total}  # fmt: skip


def vm(phase: str, *, vm_id: str = "vm-1", name: str = "app", disks: tuple[dict[str, Any], ...] = (),
       reason: str = "", error_code: str = "", started: str | None = T0, completed: str | None = None,
       location: str = "") -> dict[str, Any]:  # fmt: skip
    return {"vm_id": vm_id, "vm_name": name, "target_name": name, "host": "DC0_C0_H0", "phase": phase,
            "reason": reason, "error_code": error_code, "started_at": started, "completed_at": completed,
            "pipeline": [], "disks": list(disks), "location": location}  # fmt: skip


def migration(phase: str, vms: list[dict[str, Any]], *, name: str = "demo-1", completed: str | None = None) -> View:
    counts = {"total": len(vms), "queued": 0, "running": 0, "succeeded": 0, "failed": 0, "canceled": 0, "skipped": 0}
    for v in vms:
        key = {"Completed": "succeeded", "Failed": "failed", "Canceled": "canceled", "Skipped": "skipped",
               "Queued": "queued"}.get(v["phase"], "running")  # fmt: skip
        counts[key] += 1
    return {"name": name, "plan": "demo", "phase": phase, "created_at": T0, "started_at": T0,
            "completed_at": completed, "counts": counts, "vms": vms}  # fmt: skip


def vm_change(v: dict[str, Any], name: str = "demo-1") -> Change:
    return {"kind": "migration_vm", "name": name, "vm": v}


def migration_change(view: View) -> Change:
    return {"kind": "migration", "name": view["name"], "migration": view}


# A recording of one VM with two disks copied to a local target (the planner's SSE payloads, in order).
STARTED = migration("Running", [vm("Queued", started=None)])
DISK_A, DISK_B = 256 * MiB, 1024 * MiB
DONE_VM = vm("Completed", disks=(disk(2000, DISK_A, DISK_A, True), disk(2001, DISK_B, DISK_B, True)),
             completed="2025-01-01T10:00:14+00:00", location="/var/demo/target/default/app")  # fmt: skip
RECORDING: list[Change] = [
    {"kind": "provider", "name": "someone-else"},
    migration_change(STARTED),
    vm_change(vm("PowerOffSource")),
    vm_change(vm("CopyDisks", disks=(disk(2000, 0, DISK_A), disk(2001, 0, DISK_B)))),
    vm_change(vm("CopyDisks", disks=(disk(2000, 128 * MiB, DISK_A), disk(2001, 64 * MiB, DISK_B))), name="other-1"),
    vm_change(vm("CopyDisks", disks=(disk(2000, 128 * MiB, DISK_A), disk(2001, 64 * MiB, DISK_B)))),
    vm_change(vm("CreateVM", disks=(disk(2000, DISK_A, DISK_A, True), disk(2001, DISK_B, DISK_B, True)))),
    vm_change(DONE_VM),
    migration_change(migration("Succeeded", [DONE_VM], completed="2025-01-01T10:00:15+00:00")),
    vm_change(vm("Completed"), name="after-the-end"),
]


class FakeFeed:
    """Each ``open()`` plays the next connection: a list of changes (an exception in it is
    raised at that point), or an exception raised when opening."""

    def __init__(self, *connections: list[Change | BaseException] | BaseException) -> None:
        self.connections = list(connections)
        self.opened = 0

    @contextlib.contextmanager
    def open(self) -> Iterator[Iterator[Change]]:
        self.opened += 1
        connection = self.connections.pop(0)
        if isinstance(connection, BaseException):
            raise connection
        yield self._play(connection)

    @staticmethod
    def _play(items: list[Change | BaseException]) -> Iterator[Change]:
        for item in items:
            if isinstance(item, BaseException):
                raise item
            yield item


class FakeApi:
    """The planner's migrations: ``create`` answers ``created``; ``get`` answers the next of ``reads``."""

    def __init__(self, created: View | None = None, reads: list[View | Exception] | None = None) -> None:
        self.created, self.reads = created, list(reads or [])
        self.calls: list[tuple[str, str | None]] = []

    def create(self, plan: str, name: str | None) -> View:
        self.calls.append(("create", plan))
        if self.created is None:
            raise CliError("plan demo is not Ready (plan_not_ready)")
        return self.created

    def get(self, name: str) -> View:
        self.calls.append(("get", name))
        answer = self.reads.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def snapshot(self, view: View) -> None:
        self.events.append(("snapshot", view["phase"]))

    def change(self, change: Change, view: View) -> None:
        self.events.append(("change", change["kind"]))

    def notice(self, text: str) -> None:
        self.events.append(("notice", text))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def reconnect(self, give_up_after: float = 120.0) -> Reconnect:
        return Reconnect(give_up_after=give_up_after, sleep=self.sleep, clock=lambda: self.now)


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None, force_terminal=False), out


def start(api: Any) -> View:
    view: View = api.create("demo", None)
    return view


def test_a_recorded_migration_is_followed_to_its_summary_and_exits_0() -> None:
    feed, api = FakeFeed(list(RECORDING)), FakeApi(created=STARTED)
    out_console, out = console()
    ticks = iter(float(second) for second in range(100))
    live = LiveDisplay(out_console, clock=lambda: next(ticks))

    view = follow_migration(start, feed, api, FollowFormat.TABLE, out_console, live=live)

    assert exit_code(view) == EXIT_SUCCEEDED
    assert api.calls == [("create", "demo")], "the stream alone carries progress: no polling"
    text = out.getvalue()
    # not a terminal: a line for each phase change and each copied disk, in order, never another migration's;
    # one clock tick per update: the POST answer, then each change of demo-1 (rates from those ticks)
    logged = [line for line in text.splitlines() if line[6:].startswith("app: ")]
    assert logged == [
        " 0:00 app: Queued", " 0:02 app: PowerOffSource", " 0:03 app: CopyDisks", " 0:05 app: CreateVM",
        " 0:05 app: copied [LocalDS_0] app/app_2000.vmdk: 256.0 MiB of 256.0 MiB (256.0 MiB read) at 128.0 MiB/s",
        " 0:05 app: copied [LocalDS_0] app/app_2001.vmdk: 1.0 GiB of 1.0 GiB (1.0 GiB read) at 512.0 MiB/s",
        " 0:06 app: Completed",
    ]  # fmt: skip
    assert "/var/demo/target/default/app" in text
    assert "14.0s" in text, "the VM's duration"
    assert "1.2 GiB in 2 disks" in text
    assert "migration demo-1 Succeeded in 15.0s: 1 succeeded (1.2 GiB of disks, 1.2 GiB read at 85.3 MiB/s)" in text


def test_json_lines_are_every_change_of_the_migration_then_the_final_view() -> None:
    lines: list[str] = []
    feed, api = FakeFeed(list(RECORDING)), FakeApi(created=STARTED)

    view = follow_migration(start, feed, api, FollowFormat.JSON, console()[0], jsonlines=JsonLinesDisplay(lines.append))

    parsed = [json.loads(line) for line in lines]
    ours = [c for c in RECORDING if c.get("name") == "demo-1"]
    assert parsed[0] == migration_change(STARTED), "the view POST answered, as a migration change"
    assert parsed[1:-1] == ours
    assert parsed[-1] == view
    assert view["phase"] == "Succeeded"


def test_a_resync_rereads_the_migration_and_can_end_there() -> None:
    finished = migration("Succeeded", [DONE_VM], completed="2025-01-01T10:00:15+00:00")
    feed = FakeFeed(
        [vm_change(vm("CopyDisks")), {"kind": "resync", "reason": "client too slow"}, vm_change(vm("Failed"))]
    )
    api = FakeApi(created=STARTED, reads=[finished])
    display = Recorder()

    view = Follower(feed=feed, api=api, display=display).run(lambda: start(api))

    assert view == finished
    assert api.calls == [("create", "demo"), ("get", "demo-1")]
    assert display.events == [("snapshot", "Running"), ("change", "migration_vm"), ("snapshot", "Succeeded")]


def test_a_dropped_stream_is_reopened_and_the_migration_reread_before_following_on() -> None:
    clock = FakeTime()
    copying = migration("Running", [vm("CopyDisks")])
    feed = FakeFeed(
        [vm_change(vm("PowerOffSource")), StreamLostError("ReadError")],
        StreamLostError("ConnectError"),  # the planner restarts
        [migration_change(migration("Succeeded", [DONE_VM]))],
    )
    api = FakeApi(created=STARTED, reads=[copying])
    display = Recorder()
    follower = Follower(
        feed=feed, api=api, display=display, reconnect=Reconnect(sleep=clock.sleep, clock=lambda: clock.now)
    )

    view = follower.run(lambda: start(api))

    assert view["phase"] == "Succeeded"
    assert feed.opened == 3
    assert clock.slept == [0.2, 0.5]
    assert api.calls == [("create", "demo"), ("get", "demo-1")], "created once, re-read after the reconnect"
    assert display.events == [
        ("snapshot", "Running"),
        ("change", "migration_vm"),
        ("notice", "event stream lost (ReadError); reconnecting"),
        ("snapshot", "Running"),
        ("notice", "event stream back; following again"),
        ("change", "migration"),
    ]


def test_a_planner_that_stays_away_ends_following_with_how_to_resume() -> None:
    clock = FakeTime()
    feed = FakeFeed([StreamLostError("ReadError")], *[StreamLostError("ConnectError")] * 20)
    api = FakeApi(created=STARTED)
    follower = Follower(feed=feed, api=api, display=Recorder(), reconnect=clock.reconnect(give_up_after=30.0))

    with pytest.raises(CliError, match=r"event stream for 3\ds .*resume with `ferry migration show demo-1 --watch`"):
        follower.run(lambda: start(api))
    assert clock.slept == [0.2, 0.5, 1.0, 2.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_an_unreachable_planner_while_rereading_counts_as_a_lost_stream() -> None:
    clock = FakeTime()
    feed = FakeFeed([StreamLostError("ReadError")], [], [])
    api = FakeApi(created=STARTED, reads=[UnreachableError("cannot reach the planner"), migration("Failed", [])])
    follower = Follower(
        feed=feed, api=api, display=Recorder(), reconnect=Reconnect(sleep=clock.sleep, clock=lambda: clock.now)
    )

    assert follower.run(lambda: start(api))["phase"] == "Failed"
    assert feed.opened == 3


def test_no_stream_at_the_start_fails_at_once_without_starting_a_migration() -> None:
    api = FakeApi(created=STARTED)
    follower = Follower(feed=FakeFeed(StreamLostError("ConnectError")), api=api, display=Recorder())

    with pytest.raises(CliError, match=r"cannot open the planner's event stream \(ConnectError\); is it running\?"):
        follower.run(lambda: start(api))
    assert api.calls == []


def test_a_refused_start_is_the_planners_one_line_error() -> None:
    with pytest.raises(CliError, match="plan_not_ready"):
        follow_migration(start, FakeFeed([]), FakeApi(created=None), FollowFormat.TABLE, console()[0])


def test_a_failed_vm_shows_its_reason_and_code_and_exits_1() -> None:
    reason = "cannot read [LocalDS_0] app/app.vmdk: 503 from the datastore"
    failed = vm("Failed", reason=reason, error_code="source_read", disks=(disk(2000, 64 * MiB, DISK_A),),
                completed="2025-01-01T10:00:09+00:00")  # fmt: skip
    feed = FakeFeed([vm_change(failed), migration_change(migration("Failed", [failed]))])
    out_console, out = console()

    view = follow_migration(start, feed, FakeApi(created=STARTED), FollowFormat.TABLE, out_console)

    assert exit_code(view) == EXIT_FAILED
    text = out.getvalue()
    assert "app: Failed (cannot read [LocalDS_0] app/app.vmdk: 503 from the datastore)" in text
    assert "503 from the datastore (source_read)" in text
    assert "64.0/256.0 MiB (25%)" in text
    assert "migration demo-1 Failed: 1 failed" in text
    assert "run `ferry migrate demo` again (VMs migrated already are skipped)" in text


def test_a_canceled_migration_exits_3() -> None:
    canceled = migration("Canceled", [vm("Canceled", reason="canceled by the user")])
    feed = FakeFeed([migration_change(canceled)])

    view = follow_migration(start, feed, FakeApi(created=STARTED), FollowFormat.TABLE, console()[0])

    assert exit_code(view) == EXIT_CANCELED


def test_ctrl_c_stops_following_but_not_the_migration(capsys: pytest.CaptureFixture[str]) -> None:
    feed = FakeFeed([vm_change(vm("CopyDisks")), KeyboardInterrupt()])
    api = FakeApi(created=STARTED)

    with pytest.raises(typer.Exit) as stopped:
        follow_migration(start, feed, api, FollowFormat.TABLE, console()[0])

    assert stopped.value.exit_code == 130
    err = capsys.readouterr().err
    assert "stopped following migration demo-1; it goes on." in err
    assert "ferry migration show demo-1 --watch" in err
    assert "ferry migration cancel demo-1" in err
    assert api.calls == [("create", "demo")], "nothing was canceled"


def test_a_finished_migration_ends_watching_at_its_first_snapshot() -> None:
    finished = migration("Succeeded", [DONE_VM])
    api = FakeApi(reads=[finished])
    lines: list[str] = []

    def read(api: Any) -> View:
        view: View = api.get("demo-1")
        return view

    follow_migration(read, FakeFeed([]), api, FollowFormat.JSON, console()[0], jsonlines=JsonLinesDisplay(lines.append))

    assert [json.loads(line) for line in lines] == [migration_change(finished), finished]
