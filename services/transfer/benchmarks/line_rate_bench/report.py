"""The results as a table per case (stdout) and as a JSON document."""

import json
from pathlib import Path
from typing import Any

from line_rate_bench.cases import MiB
from line_rate_bench.harness import CaseResult
from line_rate_bench.results import Series

CURL = "curl -o"


def best_peer(case: CaseResult) -> tuple[str, float] | None:
    """The fastest peer with a valid figure, and its median MiB/s."""
    figures = [(s.tool, m) for s in case.series if s.is_peer and (m := s.median(case.spec.capacity)) is not None]
    return max(figures, key=lambda figure: figure[1]) if figures else None


def _reference(case: CaseResult, tool: str) -> float | None:
    return next((s.median(case.spec.capacity) for s in case.series if s.tool == tool), None)


def _rss(series: Series) -> str:
    peaks = series.peak_rss()
    if not peaks:
        return "-"
    if series.is_peer and len(peaks) > 1:
        return " + ".join(f"{name} {peak / MiB:.0f}" for name, peak in zip(series.process_names, peaks, strict=False))
    return "/".join(f"{peak / MiB:.0f}" for peak in peaks)


def _ratio(value: float | None, reference: float | None) -> str:
    return f"{value / reference:.2f}" if value is not None and reference else "-"


def table(case: CaseResult) -> str:
    """The case's table: tool, workers, median and range of MiB/s, ratios, peak RSS."""
    capacity = case.spec.capacity
    best, curl = best_peer(case), _reference(case, CURL)
    header = ("tool", "workers", "MiB/s", "min-max", "/best peer", "/curl -o", "peak RSS MiB")
    rows = [header]
    for series in case.series:
        median = series.median(capacity)
        speeds = series.speeds(capacity)
        if series.invalid is not None:
            shown, spread = "WRONG COPY", "-"
        elif series.failures:
            shown, spread = "FAILED", "-"
        else:
            shown, spread = f"{median:.0f}", f"{min(speeds):.0f}-{max(speeds):.0f}"
        rows.append((
            series.tool,
            "-" if series.workers is None else str(series.workers),
            shown,
            spread,
            _ratio(median, best[1] if best else None),
            _ratio(median, curl),
            _rss(series),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if best is not None:
        lines.append(f"best peer: {best[0]}, {best[1]:.0f} MiB/s")
    return "\n".join(lines)


def document(
    cases: list[CaseResult], header: dict[str, Any], commands: dict[str, str], ferry: str | None
) -> dict[str, Any]:
    """The JSON results: ``header`` (command, machine, dirs) and every run of every case."""
    return {
        **header,
        "ferry": ferry,
        "ferry_note": None if ferry else "not measured: no --ferry runner given (peers only)",
        "cases": [_case(case, commands) for case in cases],
    }


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _case(case: CaseResult, commands: dict[str, str]) -> dict[str, Any]:
    capacity, best, curl = case.spec.capacity, best_peer(case), _reference(case, CURL)
    return {
        "key": case.spec.key,
        "title": case.spec.title,
        "vm": case.spec.vm,
        "capacity_bytes": capacity,
        "allocated_bytes": case.spec.allocated,
        "change_id": case.source.change_id,
        "bandwidth_per_connection": case.spec.bandwidth_per_connection,
        "target_dir": str(case.placement.path),
        "target_dir_reason": case.placement.reason,
        "load_average_before": case.load_before,
        "load_average_after": case.load_after,
        "best_peer": {"tool": best[0], "mib_per_s": best[1]} if best else None,
        "results": [_series(series, capacity, best, curl, commands) for series in case.series],
    }


def _series(
    series: Series, capacity: int, best: tuple[str, float] | None, curl: float | None, commands: dict[str, str]
) -> dict[str, Any]:
    median, speeds = series.median(capacity), series.speeds(capacity)
    return {
        "tool": series.tool,
        "workers": series.workers,
        "peer": series.is_peer,
        "command": commands.get(series.tool),
        "median_mib_per_s": median,
        "min_mib_per_s": min(speeds) if speeds and median is not None else None,
        "max_mib_per_s": max(speeds) if speeds and median is not None else None,
        "ratio_to_best_peer": median / best[1] if median is not None and best else None,
        "ratio_to_curl": median / curl if median is not None and curl else None,
        "peak_rss_bytes": list(series.peak_rss()),
        "processes": list(series.process_names),
        "runs": [
            {
                "seconds": run.seconds,
                "mib_per_s": capacity / MiB / run.seconds,
                "bytes_copied": run.bytes_copied,
                "peak_rss_bytes": list(run.peak_rss),
            }
            for run in series.runs
        ],
        "failures": series.failures,
        "invalid": series.invalid,
    }
