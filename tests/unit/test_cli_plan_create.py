"""``ferry plan create`` against a hand-written fake planner on a loopback port: a plan that
is stored but not Ready is shown with its concerns, then one line saying so, and exit 1."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from ferry_cli import main
from ferry_cli.client import CliError
from ferry_cli.commands.plans import not_ready_line


def concern(id_: str, category: str, label: str) -> dict[str, str]:
    return {"id": id_, "category": category, "label": label, "assessment": f"{label}, in detail"}


def stored_plan(*vms: dict[str, Any], conditions: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
    critical = any(c["category"] == "Critical" for c in conditions) or any(
        c["category"] == "Critical" for vm in vms for c in vm["concerns"]
    )
    spec = {"name": "wave1", "source_provider": "vc", "target_provider": "disk", "target_namespace": "apps",
            "network_map": "net", "storage_map": "sto", "vms": [{"ref": vm["ref"]} for vm in vms]}  # fmt: skip
    return {"plan": spec, "status": {"ready": not critical, "conditions": list(conditions), "vms": list(vms)}}


def vm_result(name: str, *concerns: dict[str, str]) -> dict[str, Any]:
    return {"ref": name, "id": f"id-{name}", "name": name, "target_name": name, "concerns": list(concerns)}


class FakePlanner(ThreadingHTTPServer):
    """Stores what ``POST /api/v1/plans`` sends and answers with ``answer``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer: dict[str, Any] = stored_plan()
        self.created: list[Any] = []


class Handler(BaseHTTPRequestHandler):
    server: FakePlanner
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.server.created.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        data = json.dumps(self.server.answer).encode()
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def planner(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlanner]:
    server = FakePlanner()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    monkeypatch.setenv("FERRY_PLANNER_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("FERRY_TOKEN", "unused-by-the-fake")
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


CREATE = ["plan", "create", "wave1", "--source", "vc", "--target", "disk", "--network-map", "net",
          "--storage-map", "sto", "--namespace", "apps", "--vm", "web-01", "--vm", "db-01"]  # fmt: skip
NOT_READY = stored_plan(
    vm_result("web-01", concern("vm.target.exists", "Critical", "VM already exists on the target")),
    vm_result("db-01", concern("vm.mac.duplicate", "Critical", "MAC address shared with another VM of the plan"),
              concern("vm.cbt", "Information", "Changed Block Tracking is off")),
    conditions=({"type": "DuplicateMAC", "category": "Critical", "message": "several VMs …"},),
)  # fmt: skip


@pytest.mark.parametrize("output", ["table", "json"])
def test_a_plan_stored_but_not_ready_is_shown_then_one_line_and_exit_1(planner: FakePlanner, output: str) -> None:
    planner.answer = NOT_READY
    result = CliRunner().invoke(main.typer_app, [*CREATE, "--output", output], env={"COLUMNS": "250"})

    assert result.exit_code == 1
    assert isinstance(result.exception, CliError)
    line = str(result.exception)
    assert "\n" not in line
    assert line.startswith("plan 'wave1' is stored but not Ready, 3 Critical (DuplicateMAC; ")
    assert "web-01: VM already exists on the target" in line
    assert "db-01: MAC address shared with another VM of the plan" in line
    assert "Changed Block Tracking" not in line, "only what blocks the plan"
    assert "`ferry plan show wave1`" in line and "`ferry plan delete wave1`" in line
    if output == "json":
        assert json.loads(result.stdout)["status"]["ready"] is False, "the stored plan is still printed"
    else:
        assert "VM already exists on the target" in result.stdout, "the concerns are listed"
    assert len(planner.created) == 1


def test_a_long_list_of_critical_concerns_is_cut_short() -> None:
    many = stored_plan(*(vm_result(f"vm-{i}", concern("vm.not_found", "Critical", "VM not found")) for i in range(8)))
    line = not_ready_line(many)
    assert "8 Critical" in line and "vm-4: VM not found; and 3 more" in line and "vm-5" not in line


def test_a_ready_plan_exits_0(planner: FakePlanner) -> None:
    planner.answer = stored_plan(vm_result("web-01"), vm_result("db-01"))
    result = CliRunner().invoke(main.typer_app, [*CREATE, "--output", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"]["ready"] is True
