"""``ferry migrate`` and ``ferry migration list|show|cancel`` against a hand-written fake
planner on a loopback port (the real HTTP and event-stream framing, fake state)."""

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from ferry_cli import main
from ferry_cli.client import CliError

T0 = "2025-01-01T10:00:00+00:00"


def vm(phase: str, **extra: Any) -> dict[str, Any]:
    base = {"vm_id": "vm-1", "vm_name": "app", "target_name": "app", "host": "h", "phase": phase, "reason": "",
            "error_code": "", "started_at": T0, "completed_at": None, "pipeline": [],
            "disks": [{"key": 1, "file_name": "[ds] app/app.vmdk", "bytes_total": 1024, "bytes_done": 0,
                       "completed": False}], "location": ""}  # fmt: skip
    return base | extra


def migration(phase: str, *vms: dict[str, Any]) -> dict[str, Any]:
    return {"name": "demo-1", "plan": "demo", "phase": phase, "created_at": T0, "started_at": T0,
            "completed_at": None if phase == "Running" else "2025-01-01T10:00:04+00:00",
            "counts": {"total": len(vms), "succeeded": sum(v["phase"] == "Completed" for v in vms)},
            "vms": list(vms)}  # fmt: skip


DONE = vm("Completed", completed_at="2025-01-01T10:00:03+00:00", location="/tmp/target/default/app")
CHANGES = [
    {"kind": "migration_vm", "name": "demo-1", "vm": vm("CopyDisks")},
    {"kind": "plan_status", "name": "demo", "ready": True},
    {"kind": "migration_vm", "name": "demo-1", "vm": DONE},
    {"kind": "migration", "name": "demo-1", "migration": migration("Succeeded", DONE)},
]


class FakePlanner(ThreadingHTTPServer):
    """Answers the migration API from fixed views; the event stream plays ``CHANGES``
    once a migration was created (or at once when ``started`` is already set)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, Any]] = []
        self.started = threading.Event()
        self.view = migration("Running", vm("Queued"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakePlanner
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, None))
        if self.path == "/api/v1/events":
            self._events()
        elif self.path.startswith("/api/v1/migrations?") or self.path == "/api/v1/migrations":
            self._answer(200, [self.server.view])
        elif self.path == "/api/v1/migrations/demo-1":
            self._answer(200, self.server.view)
        else:
            self._answer(404, {"reason": "not_found", "message": f"migration {self.path.rsplit('/', 1)[1]} not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append(("POST", self.path, body))
        if self.path == "/api/v1/migrations":
            self.server.started.set()
            self._answer(201, self.server.view)
        elif self.path == "/api/v1/migrations/demo-1/cancel":
            self._answer(202, migration("Running", vm("Canceling")))
        else:
            self._answer(404, {"reason": "not_found", "message": "not found"})

    def _events(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(b": connected\n\n")
        self.wfile.flush()
        if not self.server.started.wait(10):
            return
        for change in CHANGES:
            self.wfile.write(f"event: {change['kind']}\ndata: {json.dumps(change)}\n\n".encode())
            self.wfile.flush()


@pytest.fixture
def planner(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlanner]:
    server = FakePlanner()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    monkeypatch.setenv("FERRY_PLANNER_URL", server.url)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


runner = CliRunner()


def test_migrate_as_json_lines_follows_to_the_end_and_exits_0(planner: FakePlanner) -> None:
    result = runner.invoke(main.typer_app, ["migrate", "demo", "--name", "demo-1", "-o", "json"])

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("kind") for line in lines] == ["migration", "migration_vm", "migration_vm", "migration", None]
    assert lines[-1]["phase"] == "Succeeded"
    assert ("POST", "/api/v1/migrations", {"plan": "demo", "name": "demo-1"}) in planner.requests
    opened = planner.requests.index(("GET", "/api/v1/events", None))
    assert opened < planner.requests.index(("POST", "/api/v1/migrations", {"plan": "demo", "name": "demo-1"}))


def test_migrate_with_bars_prints_the_summary(planner: FakePlanner) -> None:
    result = runner.invoke(main.typer_app, ["migrate", "demo"])

    assert result.exit_code == 0, result.output
    assert "/tmp/target/default/app" in result.stdout
    assert "migration demo-1 Succeeded in 4.0s: 1 succeeded" in result.stdout


def test_migrate_detached_prints_only_the_name(planner: FakePlanner) -> None:
    result = runner.invoke(main.typer_app, ["migrate", "demo", "--detach"])

    assert (result.exit_code, result.stdout) == (0, "demo-1\n")
    assert ("GET", "/api/v1/events", None) not in planner.requests


def test_show_watch_of_a_finished_migration_prints_it_and_exits_with_its_result(planner: FakePlanner) -> None:
    planner.view = migration("Failed", vm("Failed", reason="disk read failed", error_code="source_read"))

    result = runner.invoke(main.typer_app, ["migration", "show", "demo-1", "--watch"], env={"COLUMNS": "200"})

    assert result.exit_code == 1
    assert "disk read failed (source_read)" in result.stdout


def test_list_show_and_cancel(planner: FakePlanner) -> None:
    listed = runner.invoke(main.typer_app, ["migration", "list", "--plan", "demo"])
    shown = runner.invoke(main.typer_app, ["migration", "show", "demo-1", "-o", "yaml"])
    canceled = runner.invoke(main.typer_app, ["migration", "cancel", "demo-1", "--vm", "app"])

    assert listed.exit_code == shown.exit_code == canceled.exit_code == 0
    assert "demo-1" in listed.stdout
    assert "Running" in listed.stdout
    assert ("GET", "/api/v1/migrations?plan=demo", None) in planner.requests
    assert "phase: Running" in shown.stdout
    assert ("POST", "/api/v1/migrations/demo-1/cancel", {"vms": ["app"]}) in planner.requests
    assert "Canceling" in canceled.stdout
    assert "cancel requested for app" in canceled.stdout


def test_errors_are_one_line_without_a_traceback(
    planner: FakePlanner, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["ferry", "migration", "show", "nope"])

    with pytest.raises(SystemExit) as exited:
        main.app()

    assert exited.value.code == 1
    assert capsys.readouterr().err == "error: migration nope not found (not_found)\n"


def test_watch_as_yaml_is_refused(planner: FakePlanner) -> None:
    result = runner.invoke(main.typer_app, ["migration", "show", "demo-1", "--watch", "-o", "yaml"])

    assert isinstance(result.exception, CliError)
    assert "not yaml" in str(result.exception)
