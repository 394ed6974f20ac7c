"""A migration as tables: every VM's phase, duration, disks and result (for ``ferry
migration show`` and the end of ``ferry migrate``), and the closing line."""

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from ferry_cli.follow import formats
from ferry_cli.follow.disk_bytes import total_read
from ferry_cli.follow.ports import View
from ferry_cli.follow.state import CANCELED, FAILED, SUCCEEDED, disk_bytes, read_bytes, seconds_between
from ferry_cli.tables import FittedTable, short_path


def vm_result(vm: dict[str, Any]) -> Text:
    """Where the VM went, or why it did not (with the machine-readable code of a failure)."""
    if vm["phase"] == "Completed":
        return Text(short_path(vm["location"] or ""))
    reason = vm["reason"] or ""
    if vm["phase"] == "Failed":
        code = f" ({vm['error_code']})" if vm.get("error_code") else ""
        return Text(f"{reason}{code}", style="red")
    return Text(reason, style="dim" if vm["phase"] in ("Skipped", "Queued") else "")


def _disks(vm: dict[str, Any]) -> str:
    total = sum(d["bytes_total"] for d in vm["disks"])
    if not vm["disks"]:
        return ""
    done = sum(d["bytes_done"] for d in vm["disks"])
    if done >= total or vm["phase"] in ("Completed", "Skipped"):
        count = len(vm["disks"])
        size = f"{formats.size(total)} in {count} disks" if count > 1 else formats.size(total)
        read = total_read(vm["disks"])
        return size if read is None or vm["phase"] == "Skipped" else f"{size}\n{formats.size(read)} read"
    return f"{formats.size_pair(done, total)} ({100 * done // max(total, 1)}%)"


def vm_table(view: View, now: datetime | None = None) -> FittedTable:
    """One row per VM, in plan order; a running VM's duration is up to ``now``. The TARGET column
    is shown only when some VM is renamed on the target (80 columns are few)."""
    now_text = (now or datetime.now(UTC)).isoformat()
    renamed = any(vm["target_name"] != vm["vm_name"] for vm in view["vms"])
    rows: list[list[str | Text]] = []
    for vm in view["vms"]:
        seconds = seconds_between(vm.get("started_at"), vm.get("completed_at") or now_text)
        rows.append([
            vm["vm_name"], *([vm["target_name"]] if renamed else []),
            Text(vm["phase"], style=formats.phase_style(vm["phase"])), formats.duration(seconds), _disks(vm),
            vm_result(vm),
        ])  # fmt: skip
    headers = ("VM", *(("TARGET",) if renamed else ()), "PHASE", "DURATION", "DISKS", "LOCATION / REASON")
    return FittedTable(headers, rows, f"migration {view['name']} (plan {view['plan']})")


def summary_line(view: View) -> Text:
    """``migration p1-1 Succeeded in 12.3s: 2 succeeded, 1 skipped (1.3 GiB of disks, 520.0 MiB read at
    43.3 MiB/s)``: the rate is of the bytes read, not of the holes skipped."""
    counts: dict[str, int] = view.get("counts", {})
    parts = [f"{n} {k}" for k, n in counts.items() if k != "total" and n]
    seconds = seconds_between(view.get("started_at"), view.get("completed_at"))
    text = Text(f"migration {view['name']} ")
    text.append(view["phase"], style=formats.phase_style(view["phase"]))
    if seconds is not None:
        text.append(f" in {formats.duration(seconds)}")
    text.append(f": {', '.join(parts) or 'no VMs'}")
    copied = disk_bytes(view)
    if view["phase"] == SUCCEEDED and copied and seconds:
        read = read_bytes(view)
        moved = "bytes read not reported" if read is None else f"{formats.size(read)} read"
        if read is not None:
            moved += f" at {formats.rate(read / seconds)}"
        text.append(f" ({formats.size(copied)} of disks, {moved})")
    return text


def hint(view: View) -> str:
    """What to do next after a migration that did not succeed."""
    if view["phase"] == FAILED:
        return (
            f"fix what the reasons say, then run `ferry migrate {view['plan']}` again "
            "(VMs migrated already are skipped)"
        )
    if view["phase"] == CANCELED:
        return f"run `ferry migrate {view['plan']}` to migrate the canceled VMs later"
    return ""


def summary(view: View) -> RenderableType:
    """The table, the closing line and (when it did not succeed) what to do next."""
    parts: list[RenderableType] = [vm_table(view), summary_line(view)]
    if next_step := hint(view):
        parts.append(Text(next_step, style="dim"))
    return Group(*parts)
