"""The part of ``ferry demo`` that runs the plan — stage 3 — through the same code as
``ferry migrate``, then shows what landed in the local target and how fast."""

import time
from pathlib import Path

from rich.console import Console

from ferry_cli.client import PLANNER_URL_ENV, ApiClient
from ferry_cli.follow import formats
from ferry_cli.follow.http_planner import HttpChangeFeed, HttpMigrationsApi
from ferry_cli.follow.ports import MigrationsApi, View
from ferry_cli.follow.run import FollowFormat, follow_migration
from ferry_cli.follow.state import disk_bytes, read_bytes
from ferry_cli.local.stack import LocalStack
from ferry_cli.tables import FittedTable, short_path


def migrate_plan(stack: LocalStack, plan: str, console: Console) -> View:
    """Start a migration of ``plan``, follow it with progress bars, and report the result."""
    planner = ApiClient(stack.services["planner"].http_url, "planner", PLANNER_URL_ENV, stack.api_token())

    def start(api: MigrationsApi) -> View:
        return api.create(plan, None)

    started = time.monotonic()
    view = follow_migration(
        start, HttpChangeFeed(planner), HttpMigrationsApi(planner), FollowFormat.TABLE, console, interruptible=False
    )
    report_result(view, time.monotonic() - started, stack.target_dir, console)
    return view


def report_result(view: View, wall_seconds: float, target_dir: Path, console: Console) -> None:
    """Where every migrated VM landed in ``target_dir`` (disk images and manifests), the
    wall time and the rate over the disks' size."""
    rows: list[list[str]] = []
    data = 0
    for vm in view["vms"]:
        directory = Path(vm["location"]) if vm["phase"] == "Completed" and vm["location"] else None
        if directory is None or not directory.is_dir():
            continue
        files = sorted(path for path in directory.iterdir() if path.is_file())
        images = [path for path in files if path.suffix == ".raw"]
        data += sum(path.stat().st_blocks * 512 for path in images)
        rows.append([
            vm["vm_name"],
            short_path(directory, target_dir),
            "\n".join(f"{p.name} {formats.size(p.stat().st_size)}, {formats.size(p.stat().st_blocks * 512)}"
                      for p in images),
            " ".join(path.name for path in files if path not in images),
        ])  # fmt: skip
    if rows:
        headers = ("VM", "DIRECTORY", "DISK IMAGES (size, allocated)", "MANIFESTS")
        console.print(FittedTable(headers, rows, f"in the local target {short_path(target_dir)}"))
        console.print("each directory's README.md says how to bring the VM into a cluster with KubeVirt")
    console.print(_closing_line(view, wall_seconds, data), highlight=False)


def _closing_line(view: View, wall_seconds: float, data: int) -> str:
    """The wall time, the disks' logical size, and the rate of the bytes actually read (holes are not moved)."""
    total, read = disk_bytes(view), read_bytes(view)
    head = f"wall time {formats.duration(wall_seconds)} for {formats.size(total)} of disks"
    stored = f"{formats.size(data)} of data on the target"
    if read is None:
        return f"{head} ({stored}; bytes read not reported)"
    rate = f" at {formats.rate(read / wall_seconds)}" if wall_seconds > 0 else ""
    return f"{head}: {formats.size(read)} read{rate}, the rest unallocated or zero ({stored})"
