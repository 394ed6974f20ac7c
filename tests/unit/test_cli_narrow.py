"""What a person sees on an 80-column terminal: tables whose short columns stay whole and
whose long ones wrap at words, names cut with an ellipsis only when they must, paths relative
to the target or the working directory, and every command's --help within 80 columns."""

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console, RenderableType
from typer.testing import CliRunner

from ferry_cli import main
from ferry_cli.commands.demo import stack_table
from ferry_cli.commands.demo_migrate import report_result
from ferry_cli.commands.migrations import COLUMNS as MIGRATION_COLUMNS
from ferry_cli.commands.plans import PLAN_COLUMNS, vm_concerns_table
from ferry_cli.commands.providers import COLUMNS as PROVIDER_COLUMNS
from ferry_cli.follow.live import RateMeter, render_progress
from ferry_cli.follow.summary import vm_table
from ferry_cli.output import table_of
from ferry_cli.tables import short_path

MiB = 2**20
T0, T1 = "2025-01-01T10:00:00+00:00", "2025-01-01T10:02:03+00:00"
LONG_MESSAGE = (
    "cannot log in to https://vcenter.example.com/sdk: the user name or password is wrong; "
    "run `ferry provider update vcenter --password`"
)


def text_at(width: int, renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def lines_at_80(renderable: RenderableType) -> list[str]:
    return text_at(80, renderable).splitlines()


def provider(name: str, message: str = "", path: str = "") -> dict[str, Any]:
    spec = {"name": name, "type": "local" if path else "vsphere", "url": "" if path else "https://vcenter.example.com/sdk",
            "path": path, "in_cluster": False, "context": ""}  # fmt: skip
    counts = {} if path else {"datastores": 2, "hosts": 4, "networks": 3, "vms": 120}
    return {"spec": spec, "status": {"phase": "Error" if message else "Ready", "counts": counts, "message": message}}


def test_a_provider_table_keeps_short_columns_whole_and_wraps_the_message_at_words() -> None:
    rows = [provider("vcenter", LONG_MESSAGE), provider("target", path=str(Path.cwd() / "var/demo/target"))]

    lines = lines_at_80(table_of(rows, PROVIDER_COLUMNS))

    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "https://vcenter…" in text, "a URL is not broken over lines: cut, when the line is too short for it"
    assert "https://vcenter.example.com/sdk" in text_at(120, table_of(rows, PROVIDER_COLUMNS))
    assert "Error" in text and "Ready" in text
    assert "var/demo/target" in text and str(Path.cwd()) not in text, "a path is relative to the working directory"
    words = " ".join(" ".join(line.split()) for line in lines)
    for word in ("password", "`ferry", "update"):
        assert word in words, f"{word!r} is not broken over lines"


def test_a_long_name_ends_in_an_ellipsis_only_when_the_row_cannot_fit() -> None:
    def plan(name: str) -> dict[str, Any]:
        return {"plan": {"name": name, "source_provider": "vcenter", "target_provider": "cluster",
                         "target_namespace": "production", "vms": [{}] * 3},
                "status": {"ready": True, "conditions": [], "vms": []}}  # fmt: skip

    long, short = plan("a-plan-with-a-name-far-too-long-for-eighty-columns"), plan("wave1")

    lines = lines_at_80(table_of([long, short], PLAN_COLUMNS))

    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["NAME", "SOURCE", "TARGET", "VMS", "READY", "CRITICAL", "WARNINGS"]
    assert lines[2].split() == ["a-plan-with-a-name…", "vcenter", "cluster/production", "3", "yes", "0", "0"]
    assert lines[3].split() == ["wave1", "vcenter", "cluster/production", "3", "yes", "0", "0"]
    assert "a-plan-with-a-name-far-too-long-for-eighty-columns" in text_at(120, table_of([long], PLAN_COLUMNS))


def test_the_migration_list_fits_in_80_columns() -> None:
    counts = {"total": 12, "succeeded": 11, "skipped": 1}
    rows = [{"name": f"wave1-{i}", "plan": "wave1", "phase": "Succeeded", "started_at": T0, "completed_at": T1,
             "created_at": T0, "counts": counts} for i in range(1, 3)]  # fmt: skip

    lines = lines_at_80(table_of(rows, MIGRATION_COLUMNS))

    assert all(len(line) <= 80 for line in lines)
    assert any("wave1-1" in line and "Succeeded" in line and "2m03s" in line for line in lines), lines


def test_the_plan_vms_table_wraps_only_the_assessment() -> None:
    concern = {"category": "Warning", "label": "snapshot", "assessment": "the VM has 2 snapshots; the copy reads "
               "the current state and the snapshots are not migrated"}  # fmt: skip
    plan = {"status": {"vms": [{"name": "web-01", "ref": "vm-42", "id": "vm-42", "target_name": "web-01",
                                "concerns": [concern]}]}}  # fmt: skip

    lines = lines_at_80(vm_concerns_table(plan))

    assert all(len(line) <= 80 for line in lines)
    assert any(" ".join(line.split()[:5]) == "web-01 vm-42 web-01 Warning snapshot" for line in lines), lines
    assert "migrated" in " ".join(lines)


def test_the_migration_summary_shows_locations_relative_to_the_working_directory() -> None:
    location = str(Path.cwd() / "var/demo/target/default/app")
    disks = [{"key": 1, "file_name": "[ds] app/app.vmdk", "bytes_total": 2**30, "bytes_done": 2**30, "completed": True,
              "bytes_read": 5 * MiB, "bytes_to_read": 5 * MiB}]  # fmt: skip
    done = {"vm_id": "1", "vm_name": "app", "target_name": "app", "phase": "Completed", "reason": "", "error_code": "",
            "started_at": T0, "completed_at": T1, "disks": disks, "location": location}  # fmt: skip
    failed = {**done, "vm_id": "2", "vm_name": "db", "target_name": "db", "phase": "Failed", "location": "",
              "reason": LONG_MESSAGE, "error_code": "invalid_login"}  # fmt: skip
    view = {"name": "demo-1", "plan": "demo", "vms": [done, failed]}

    lines = lines_at_80(vm_table(view))

    assert all(len(line) <= 80 for line in lines)
    assert "TARGET" not in lines[1], "no TARGET column when no VM is renamed"
    row = " ".join(lines[3].split())
    assert row.startswith("app Completed 2m03s 1.0 GiB var/demo/target/default/app"), lines
    assert any(" ".join(line.split()).endswith("5.0 MiB read") for line in lines)


def test_the_demo_report_names_paths_relative_to_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "var" / "demo" / "target" / "default" / "app-server"
    directory.mkdir(parents=True)
    (directory / "disk-0.raw").write_bytes(b"\x01" * 4096)
    for name in ("README.md", "virtualmachine.yaml", "volumes.yaml"):
        (directory / name).write_text("x")
    disks = [{"key": 1, "file_name": "[ds] a/a.vmdk", "bytes_total": 4096, "bytes_done": 4096, "completed": True,
              "bytes_read": 4096, "bytes_to_read": 4096}]  # fmt: skip
    view = {"vms": [{"vm_name": "app-server", "phase": "Completed", "location": str(directory), "disks": disks}]}
    out = io.StringIO()

    report_result(view, 1.0, tmp_path / "var" / "demo" / "target", Console(file=out, width=80, color_system=None))

    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].strip() == "in the local target var/demo/target"
    assert any(" ".join(line.split()).startswith("app-server default/app-server disk-0.raw") for line in lines), lines


def test_the_stack_table_keeps_urls_whole() -> None:
    rows = [["nats-server (JetStream)", "nats://127.0.0.1:42123", "running"],
            ["vCenter simulator", "https://127.0.0.1:40443/sdk", "running, TLS 4F:2A:9C:11:0B:7E:55:AA…"],
            ["ferry planner", "http://127.0.0.1:41235", "ready"]]  # fmt: skip

    lines = lines_at_80(stack_table(rows))

    assert all(len(line) <= 80 for line in lines)
    assert any("https://127.0.0.1:40443/sdk" in line for line in lines)


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``group`` (typer's own click), as argument paths."""
    found = [path]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def test_every_commands_help_fits_80_columns_without_cut_summaries() -> None:
    runner = CliRunner()
    commands = _commands(typer.main.get_command(main.typer_app))
    assert len(commands) > 20

    for path in commands:
        result = runner.invoke(main.typer_app, [*path, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        lines = result.output.splitlines()
        assert all(len(line) <= 80 for line in lines), (path, [line for line in lines if len(line) > 80])
        listed = [line for line in lines[1:] if line.startswith("  ") and line.endswith("...")]
        assert not listed, f"{' '.join(path)}: a command's summary is cut: {listed}"
    storage = runner.invoke(main.typer_app, ["map", "storage", "--help"], env={"COLUMNS": "80"})
    assert "StorageClass[:volumeMode[:accessMode]]" in storage.output, "help texts are not read as markup"


def test_short_paths_are_relative_to_the_target_the_working_directory_or_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path.parent))
    assert short_path(tmp_path / "t" / "default" / "app", tmp_path / "t") == "default/app"
    assert short_path(tmp_path / "var" / "demo") == "var/demo"
    assert short_path(tmp_path.parent / "elsewhere") == "~/elsewhere"
    assert short_path("/definitely/not/here") == "/definitely/not/here"
    assert short_path("default/app") == "default/app"


def test_the_live_bars_keep_size_rate_and_eta_on_the_disks_line_at_80_columns() -> None:
    meter = RateMeter()
    meter.add(100.0, 0)
    meter.add(102.0, 2 * MiB)
    disk = {"key": 1, "file_name": "[datastore-with-a-long-name] app-server-01/app-server-01_1.vmdk",
            "bytes_total": 2**31, "bytes_done": 3 * 2**29, "completed": False, "bytes_read": 2 * MiB,
            "bytes_to_read": 5 * MiB}  # fmt: skip
    vm = {"vm_id": "1", "vm_name": "app-server-01", "phase": "CopyDisks", "reason": "", "disks": [disk],
          "started_at": T0, "completed_at": None}  # fmt: skip
    view = {"name": "demo-1", "plan": "demo", "phase": "Running", "started_at": T0, "counts": {"total": 1}, "vms": [vm]}

    lines = lines_at_80(render_progress(view, {("1", 1): meter}, datetime(2025, 1, 1, 10, 1, 5, tzinfo=UTC)))

    assert all(len(line) <= 80 for line in lines)
    disk_line = " ".join(lines[2].split())
    assert disk_line.startswith("app-server-01_1.v… ━"), "no datastore nor folder (the VM line names them); an ellipsis"
    assert "1.5/2.0 GiB 1.0 MiB/s ETA 0:03 ·" in disk_line, lines
    assert "read, rest unallocated" in " ".join(" ".join(line.split()) for line in lines[3:])
