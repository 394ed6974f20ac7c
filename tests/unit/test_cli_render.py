"""What a person sees while a migration runs: VM lines, disk bars with rate and ETA,
many VMs folded, and the sizes/durations the CLI prints."""

import io
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, RenderableType

from ferry_cli.follow import formats
from ferry_cli.follow.disk_bytes import DiskBytes
from ferry_cli.follow.live import LiveDisplay, RateMeter, render_progress
from ferry_cli.follow.summary import vm_table

MiB = 2**20
NOW = datetime(2025, 1, 1, 10, 1, 5, tzinfo=UTC)


def disk(key: int, done: int, total: int, completed: bool = False, *, read: int | None = -1,
         to_read: int | None = -1) -> dict[str, Any]:  # fmt: skip
    """A disk of the planner's view; ``read``/``to_read`` default to a whole-disk copy (no CBT)."""
    return {"key": key, "file_name": f"[LocalDS_0] app/app_{key}.vmdk", "bytes_total": total, "bytes_done": done,
            "completed": completed, "bytes_read": done if read == -1 else read,
            "bytes_to_read": total if to_read == -1 else to_read}  # fmt: skip


def vm(name: str, phase: str, *disks: dict[str, Any], reason: str = "") -> dict[str, Any]:
    started = None if phase == "Queued" else "2025-01-01T10:00:00+00:00"
    return {"vm_id": f"id-{name}", "vm_name": name, "target_name": name, "host": "h", "phase": phase,
            "reason": reason, "error_code": "", "started_at": started, "completed_at": None, "pipeline": [],
            "disks": list(disks), "location": ""}  # fmt: skip


def view(*vms: dict[str, Any]) -> dict[str, Any]:
    done = sum(1 for v in vms if v["phase"] in ("Completed", "Failed", "Canceled", "Skipped"))
    return {"name": "demo-1", "plan": "demo", "phase": "Running", "created_at": "2025-01-01T10:00:00+00:00",
            "started_at": "2025-01-01T10:00:00+00:00", "completed_at": None,
            "counts": {"total": len(vms), "succeeded": done}, "vms": list(vms)}  # fmt: skip


def text_of(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(renderable)
    return out.getvalue()


def test_a_disk_line_has_a_bar_bytes_rate_and_eta_and_a_vm_line_its_phase_elapsed_and_reason() -> None:
    meter = RateMeter()
    meter.add(100.0, 0)
    meter.add(104.0, 128 * MiB)  # 32 MiB/s
    finished = RateMeter()
    finished.add(100.0, 0)
    finished.add(102.0, 16 * MiB)
    meters = {("id-app", 1): meter, ("id-app", 2): finished}
    shown = view(
        vm("app", "CopyDisks", disk(1, 128 * MiB, 256 * MiB), disk(2, 16 * MiB, 16 * MiB, completed=True)),
        vm("db", "Queued", disk(1, 0, 2**30), reason="waiting for a slot on host h (10 of 10 running)"),
    )

    lines = [" ".join(line.split()) for line in text_of(render_progress(shown, meters, NOW)).splitlines()]

    assert lines == [
        "migration demo-1 (plan demo) Running · 0/2 VMs finished · 1:05",
        "app CopyDisks 1:05",
        "app_1.vmdk ━━━━━━━━━━ 128.0/256.0 MiB 32.0 MiB/s ETA 0:04",
        "app_2.vmdk ━━━━━━━━━━━━━━━━━━━━ 16.0/16.0 MiB 8.0 MiB/s done",
        "db Queued waiting for a slot on host h (10 of 10 running)",
    ]


def test_a_rate_is_over_the_last_seconds_and_restarts_when_a_copy_does() -> None:
    meter = RateMeter(window=10.0)
    assert meter.rate() is None
    for second in range(0, 31):
        meter.add(float(second), second * (MiB if second < 20 else 3 * MiB))  # faster from second 20
    rate = meter.rate()
    assert rate is not None
    assert rate > 2 * MiB, "the window forgets the slow start"
    meter.add(31.0, 0)
    assert meter.rate() is None, "a restarted copy starts a new measurement"


def test_many_vms_fold_into_counts_with_the_running_ones_shown() -> None:
    many = [vm(f"q{i}", "Queued") for i in range(30)] + [vm("busy", "CopyDisks")] + [vm("ok", "Completed")]

    text = text_of(render_progress(view(*many), {}, NOW))

    assert "busy" in text
    assert "q0" not in text
    assert "… 31 more VMs: 30 queued, 1 finished" in text


def test_the_live_display_renders_the_latest_view_with_rates_from_its_own_clock() -> None:
    ticks = iter([10.0, 12.0, 14.0])
    out = io.StringIO()
    display = LiveDisplay(Console(file=out, width=160, color_system=None), clock=lambda: next(ticks), now=lambda: NOW)
    display.snapshot(view(vm("app", "CopyDisks", disk(1, 0, 64 * MiB))))
    display.change({}, view(vm("app", "CopyDisks", disk(1, 32 * MiB, 64 * MiB))))

    text = text_of(display)

    assert "32.0/64.0 MiB" in text
    assert "16.0 MiB/s" in text
    assert "ETA 0:02" in text
    display.change({}, view(vm("app", "CreateVM", disk(1, 64 * MiB, 64 * MiB, completed=True))))
    assert out.getvalue().splitlines() == [
        " 0:00 app: CopyDisks",
        " 0:04 app: CreateVM",
        " 0:04 app: copied [LocalDS_0] app/app_1.vmdk: 64.0 MiB of 64.0 MiB (64.0 MiB read) at 16.0 MiB/s",
    ], "off a terminal, phase changes and copied disks are printed as lines"


def test_the_vm_table_shows_progress_of_unfinished_vms_and_results_of_finished_ones() -> None:
    done = vm("app", "Completed", disk(1, 256 * MiB, 256 * MiB, True)) | {
        "completed_at": "2025-01-01T10:02:03+00:00", "location": "/t/default/app"}  # fmt: skip
    skipped = vm("old", "Skipped", disk(1, 0, MiB), reason="already migrated by migration demo-1")
    copying = vm("db", "CopyDisks", disk(1, 512 * MiB, 2**30), disk(2, 0, 2**30))

    text = text_of(vm_table(view(done, skipped, copying), now=NOW))

    assert "2m03s" in text
    assert "1m05s" in text, "a running VM's duration so far"
    assert "/t/default/app" in text
    assert "already migrated by migration demo-1" in text
    assert "0.5/2.0 GiB (25%)" in text


def test_sizes_and_durations_read_naturally() -> None:
    assert formats.size(512) == "512 B"
    assert formats.size(1536 * MiB) == "1.5 GiB"
    assert formats.size_pair(3 * MiB, 2**30) == "0.0/1.0 GiB"
    assert formats.clock(3725) == "1:02:05"
    assert formats.duration(12.34) == "12.3s"
    assert formats.duration(3725) == "1h02m05s"
    assert formats.rate(None) == ""


def test_a_sparse_disk_shows_its_logical_size_and_the_bytes_read_apart_with_rate_and_eta_from_reads() -> None:
    meter = RateMeter()
    meter.add(100.0, 0)
    meter.add(102.0, 2 * MiB)  # 1 MiB/s of bytes read, while the bar jumps over the holes
    copying = disk(1, 1536 * MiB, 2048 * MiB, read=2 * MiB, to_read=5 * MiB)
    done = disk(2, 2048 * MiB, 2048 * MiB, True, read=5 * MiB, to_read=5 * MiB)

    text = " ".join(
        text_of(render_progress(view(vm("app", "CopyDisks", copying, done)), {("id-app", 1): meter}, NOW)).split()
    )

    assert "1.5/2.0 GiB 1.0 MiB/s ETA 0:03 · 2.0/5.0 MiB read, rest unallocated" in text
    assert "2.0/2.0 GiB done · 5.0 MiB read, rest unallocated" in text
    assert done_line(done) == "2.0 GiB of 2.0 GiB (5.0 MiB read, rest unallocated)"


def done_line(disk: dict[str, Any]) -> str:
    return DiskBytes.of(disk).describe()


def test_an_unknown_allocation_or_unreported_reads_are_said_and_no_eta_is_invented() -> None:
    unknown = DiskBytes(done=MiB, total=4 * MiB, read=MiB, to_read=None)
    unreported = DiskBytes.of({"bytes_done": MiB, "bytes_total": 4 * MiB, "completed": False})

    assert unknown.describe() == "1.0/4.0 MiB (1.0 MiB read, allocation unknown)"
    assert unknown.eta(1.0 * MiB) is None
    assert unreported.describe() == "1.0/4.0 MiB (bytes read not reported)"
    assert unreported.eta(1.0 * MiB) is None
    assert DiskBytes(done=MiB, total=4 * MiB, read=MiB, to_read=4 * MiB).eta(1.0 * MiB) == 3.0


def test_the_live_rate_comes_from_bytes_read_not_from_the_holes_covered() -> None:
    ticks = iter([10.0, 12.0])
    display = LiveDisplay(Console(file=io.StringIO(), width=160, color_system=None), clock=lambda: next(ticks),
                          now=lambda: NOW)  # fmt: skip
    display.snapshot(view(vm("app", "CopyDisks", disk(1, 0, 2**30, read=0, to_read=8 * MiB))))
    display.change({}, view(vm("app", "CopyDisks", disk(1, 2**29, 2**30, read=4 * MiB, to_read=8 * MiB))))

    text = text_of(display)

    assert "2.0 MiB/s" in text and "ETA 0:02" in text


def test_a_disk_that_read_more_than_planned_has_no_eta_until_it_completes() -> None:
    widened = DiskBytes(done=900, total=1000, read=120, to_read=100)
    assert widened.remaining() is None and widened.eta(50.0) is None
    assert DiskBytes(done=1000, total=1000, read=120, to_read=100, completed=True).remaining() == 0
    assert DiskBytes(done=500, total=1000, read=60, to_read=100).eta(20.0) == 2.0
