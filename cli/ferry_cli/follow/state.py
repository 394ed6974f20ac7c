"""A migration's state as the CLI sees it: the latest MigrationView, changes applied to
it, when following ends, and the exit code it ends with (pure; no I/O)."""

from datetime import datetime
from typing import Any

from ferry_cli.follow.disk_bytes import total_read
from ferry_cli.follow.ports import Change, View

RUNNING = "Running"
SUCCEEDED, FAILED, CANCELED = "Succeeded", "Failed", "Canceled"
VM_DONE_PHASES = frozenset({"Completed", "Failed", "Canceled", "Skipped"})

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_CANCELED = 3
"""Not 2: click already exits 2 for a usage error."""
EXIT_INTERRUPTED = 130
"""Ctrl-C stopped following (the migration goes on)."""

EXIT_CODES_HELP = (
    "Exit code: 0 when the migration Succeeded, 1 when it Failed (or on an error), "
    "3 when it was Canceled, 130 when Ctrl-C stopped following (the migration goes on)."
)


def is_about(change: Change, name: str) -> bool:
    """Whether ``change`` is a change of migration ``name``."""
    return change.get("kind") in ("migration", "migration_vm") and change.get("name") == name


def apply_change(view: View, change: Change) -> View:
    """The view after ``change`` (a ``migration`` or ``migration_vm`` change of this migration)."""
    if change["kind"] == "migration":
        migration: View = change["migration"]
        return migration
    vm: dict[str, Any] = change["vm"]
    vms = list(view.get("vms", []))
    for index, known in enumerate(vms):
        if known["vm_id"] == vm["vm_id"]:
            vms[index] = vm
            break
    else:
        vms.append(vm)
    return {**view, "vms": vms}


def is_finished(view: View) -> bool:
    """Whether following can end: the migration's phase is no longer Running."""
    return bool(view.get("phase")) and view["phase"] != RUNNING


def exit_code(view: View) -> int:
    return {SUCCEEDED: EXIT_SUCCEEDED, CANCELED: EXIT_CANCELED}.get(view.get("phase", ""), EXIT_FAILED)


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp of the API, or None."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from ``start`` to ``end`` (RFC 3339), or None when either is missing."""
    begun, ended = parse_time(start), parse_time(end)
    if begun is None or ended is None:
        return None
    return (ended - begun).total_seconds()


def disk_bytes(view: View) -> int:
    """Total size of the disks of the VMs this migration completed (not skipped, failed or canceled ones)."""
    return sum(d["bytes_total"] for vm in view.get("vms", []) if vm["phase"] == "Completed" for d in vm["disks"])


def read_bytes(view: View) -> int | None:
    """Bytes read from the source for the disks :func:`disk_bytes` counts; None when a disk did not report it."""
    return total_read([d for vm in view.get("vms", []) if vm["phase"] == "Completed" for d in vm["disks"]])
