"""Live progress for people: one line per VM (phase, elapsed, why it waits or failed) and
one bar per disk over its logical size, with the bytes actually read apart, and a rate and
ETA from those (:mod:`.disk_bytes`), redrawn by rich from the latest view.

On a terminal a rich ``Live`` region redraws four times a second; elsewhere (a log, a
pipe) each VM's phase changes are printed as plain lines instead.
"""

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ferry_cli.follow import formats
from ferry_cli.follow.disk_bytes import DiskBytes
from ferry_cli.follow.ports import Change, View
from ferry_cli.follow.state import VM_DONE_PHASES, parse_time

RATE_WINDOW = 10.0
"""Seconds of progress samples a disk's rate is averaged over."""
MAX_VM_LINES = 20
"""More VMs than this: the running ones first, the rest as counts."""
BAR_WIDTH = 20
NAME_WIDTH = 20
"""A VM or disk name longer than this ends in an ellipsis (a disk's VM is named on the line above)."""


class RateMeter:
    """A disk's copy rate from ``(time, bytes read)`` samples over the last few seconds."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._first: tuple[float, int] | None = None

    def add(self, at: float, done: int) -> None:
        if self._samples and (done < self._samples[-1][1]):
            self._samples.clear()  # the copy restarted
            self._first = None
        if self._samples and done == self._samples[-1][1]:
            return
        self._samples.append((at, done))
        self._first = self._first or (at, done)
        while len(self._samples) > 2 and self._samples[1][0] < at - self._window:
            self._samples.popleft()

    def rate(self) -> float | None:
        """Bytes per second over the window, or None before two samples."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def average(self) -> float | None:
        """Bytes per second since the first sample."""
        if self._first is None or not self._samples:
            return None
        (t0, b0), (t1, b1) = self._first, self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None


def _elapsed(started: str | None, completed: str | None, now: datetime) -> float | None:
    begun = parse_time(started)
    if begun is None:
        return None
    return ((parse_time(completed) or now) - begun).total_seconds()


SILENCE_SHOWN_AFTER = 30.0
"""Seconds without news after which a VM says whose answer it waits for."""


def _silence(vm: dict[str, Any], now: datetime) -> str:
    waiting = vm.get("waiting_for")
    since = parse_time(waiting.get("since")) if waiting else None
    if not waiting or since is None or (now - since).total_seconds() < SILENCE_SHOWN_AFTER:
        return ""
    quiet = formats.clock((now - since).total_seconds())
    return f"waiting for the {waiting['service']} ({waiting['step']}), nothing heard for {quiet}"


def _visible(vms: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str]:
    if len(vms) <= limit:
        return vms, ""
    active = [vm for vm in vms if vm["phase"] not in VM_DONE_PHASES and vm["phase"] != "Queued"]
    shown = active[:limit]
    rest = [vm for vm in vms if vm not in shown]
    queued = sum(1 for vm in rest if vm["phase"] == "Queued")
    done = len(rest) - queued
    return shown, f"… {len(rest)} more VMs: {queued} queued, {done} finished"


def render_progress(view: View | None, meters: dict[tuple[str, int], RateMeter], now: datetime) -> RenderableType:
    """The live region for ``view``; ``meters`` give each disk's rate (keyed by VM id and disk key)."""
    if view is None:
        return Text("starting the migration…", style="dim")
    counts = view.get("counts", {})
    finished = sum(counts.get(k, 0) for k in ("succeeded", "failed", "canceled", "skipped"))
    header = Text(f"migration {view['name']} (plan {view['plan']}) ")
    header.append(view["phase"], style=formats.phase_style(view["phase"]))
    header.append(f" · {finished}/{counts.get('total', len(view['vms']))} VMs finished")
    header.append(f" · {formats.clock(_elapsed(view.get('started_at'), view.get('completed_at'), now))}")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(max_width=NAME_WIDTH, overflow="ellipsis", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")  # a VM's reason, or a disk's ETA and what was read
    vms, more = _visible(view["vms"], MAX_VM_LINES)
    for vm in vms:
        _vm_rows(grid, vm, meters, now)
    parts: list[RenderableType] = [header, grid]
    if more:
        parts.append(Text(more, style="dim"))
    return Group(*parts)


def _vm_rows(grid: Table, vm: dict[str, Any], meters: dict[tuple[str, int], RateMeter], now: datetime) -> None:
    phase = vm["phase"]
    reason = Text(vm["reason"] or _silence(vm, now), style="red" if phase == "Failed" else "dim")
    status = Text(phase, style=formats.phase_style(phase))
    if elapsed := formats.clock(_elapsed(vm.get("started_at"), vm.get("completed_at"), now)):
        status.append(f" {elapsed}", style="default")
    grid.add_row(Text(vm["vm_name"], style="bold"), status, "", "", reason)
    if phase in ("Queued", "Skipped"):
        return
    for disk in vm["disks"]:
        meter = meters.get((vm["vm_id"], disk["key"]))
        counts = DiskBytes.of(disk)
        bar = ProgressBar(total=max(counts.total, 1), completed=counts.done, width=BAR_WIDTH)
        if counts.completed:
            speed, eta = (meter.average() if meter else None), Text("done", style="green")
        else:
            speed = meter.rate() if meter else None
            eta = Text(_eta(counts, speed), style="cyan")
        if note := counts.live_note():
            eta.append(f"{' · ' if eta.plain else ''}{note}", style="dim")
        grid.add_row(Text(f"  {_short_name(disk['file_name'])}", style="dim"), bar,
                     formats.size_pair(counts.done, counts.total), formats.rate(speed), eta)  # fmt: skip


def _eta(counts: DiskBytes, speed: float | None) -> str:
    if (seconds := counts.eta(speed)) is not None:
        return f"ETA {formats.clock(seconds)}"
    return "ETA unknown" if speed and counts.remaining() is None else ""


def _short_name(file_name: str) -> str:
    """``[LocalDS_0] app/app_1.vmdk`` → ``app_1.vmdk``: the datastore and folder are the VM's."""
    return file_name.rsplit("/", 1)[-1].rsplit("] ", 1)[-1]


class LiveDisplay:
    """Progress bars for a person (a :class:`~ferry_cli.follow.follower.Display`); use as a context manager."""

    def __init__(
        self,
        console: Console,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._console = console
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._view: View | None = None
        self._meters: dict[tuple[str, int], RateMeter] = {}
        self._last_phase: dict[str, str] = {}
        self._copied: set[tuple[str, int]] = set()
        self._first_update: float | None = None
        self._live: Live | None = None

    def __enter__(self) -> "LiveDisplay":
        if self._console.is_terminal:
            self._live = Live(console=self._console, get_renderable=self.__rich__, transient=True)
            self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()  # transient: the summary replaces the bars …
            self._live = None
            if kind is not None and self._view is not None:
                self._console.print(self)  # … unless following stopped early: then show where it was

    def __rich__(self) -> RenderableType:
        with self._lock:
            return render_progress(self._view, self._meters, self._now())

    def snapshot(self, view: View) -> None:
        self._update(view)

    def change(self, change: Change, view: View) -> None:
        self._update(view)

    def notice(self, text: str) -> None:
        self._console.print(Text(text, style="yellow"))

    def _update(self, view: View) -> None:
        at = self._clock()
        with self._lock:
            self._view = view
            for vm in view["vms"]:
                for disk in vm["disks"]:
                    if (read := disk.get("bytes_read")) is not None:
                        self._meters.setdefault((vm["vm_id"], disk["key"]), RateMeter()).add(at, read)
        if self._live is None:  # a Live region redraws itself four times a second
            self._log(view, at)

    def _log(self, view: View, at: float) -> None:
        """Off a terminal: a line for each VM phase change and each copied disk."""
        self._first_update = self._first_update if self._first_update is not None else at
        stamp = f"{formats.clock(at - self._first_update):>5} "
        for vm in view["vms"]:
            if self._last_phase.get(vm["vm_id"]) != vm["phase"]:
                self._last_phase[vm["vm_id"]] = vm["phase"]
                line = Text(f"{stamp}{vm['vm_name']}: ")
                line.append(vm["phase"], style=formats.phase_style(vm["phase"]))
                if vm["reason"]:
                    line.append(f" ({vm['reason']})", style="red" if vm["phase"] == "Failed" else "dim")
                self._console.print(line, highlight=False)
            for disk in vm["disks"]:
                if disk["completed"] and (vm["vm_id"], disk["key"]) not in self._copied:
                    self._copied.add((vm["vm_id"], disk["key"]))
                    meter = self._meters.get((vm["vm_id"], disk["key"]))
                    speed = meter.average() if meter else None
                    at_rate = f" at {formats.rate(speed)}" if speed else ""
                    self._console.print(
                        f"{stamp}{vm['vm_name']}: copied {disk['file_name']}: {DiskBytes.of(disk).describe()}{at_rate}",
                        highlight=False,
                        markup=False,
                    )
