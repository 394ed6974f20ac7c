"""PNG chart: throughput against workers per case, Ferry as a line, the peers as horizontal lines."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from line_rate_bench.harness import CaseResult

PEER_STYLES = ("--", "-.", ":")


def draw(cases: list[CaseResult], workers: tuple[int, ...], path: Path, subtitle: str) -> None:
    """One panel per case; the y axis starts at 0 so ratios read off the chart."""
    figure, axes = plt.subplots(1, len(cases), figsize=(5.2 * len(cases), 4.4), squeeze=False)
    for axis, case in zip(axes[0], cases, strict=True):
        capacity = case.spec.capacity
        peers = [s for s in case.series if s.is_peer]
        for index, series in enumerate(peers):
            median = series.median(capacity)
            if median is not None:
                style = PEER_STYLES[index % len(PEER_STYLES)]
                axis.axhline(median, linestyle=style, color=f"C{index + 1}", label=f"{series.tool}: {median:.0f}")
        ferry = [(s.workers, s.median(capacity), s.speeds(capacity)) for s in case.series if s.tool == "ferry"]
        shown = [(w, m, speeds) for w, m, speeds in ferry if w is not None and m is not None]
        if shown:
            xs = [w for w, _, _ in shown]
            ys = [m for _, m, _ in shown]
            below = [m - min(speeds) for _, m, speeds in shown]
            above = [max(speeds) - m for _, m, speeds in shown]
            axis.errorbar(xs, ys, yerr=[below, above], marker="o", color="C0", capsize=3, label="Ferry (median, range)")
            for x, y in zip(xs, ys, strict=True):
                axis.annotate(f"{y:.0f}", (x, y), textcoords="offset points", xytext=(8, -3), fontsize=8, color="C0")
        else:
            axis.text(0.5, 0.06, "Ferry not measured yet", transform=axis.transAxes, ha="center", color="0.4")
        axis.set_title(f"({case.spec.key}) {case.spec.title}", fontsize=10)
        axis.set_xlabel("Ferry workers")
        axis.set_ylabel("MiB/s (disk size / wall time)")
        axis.set_xticks(list(workers))
        axis.set_xlim(min(workers) - 0.5, max(workers) + 0.5)
        axis.set_ylim(bottom=0, top=max([1.0, *_tops(case)]) * 1.25)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8, loc="best")
    figure.suptitle(f"Disk copy throughput against workers — {subtitle}", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _tops(case: CaseResult) -> list[float]:
    return [max(s.speeds(case.spec.capacity)) for s in case.series if s.runs and s.median(case.spec.capacity)]
