"""How sizes, rates, durations and phases read on a terminal."""

PHASE_STYLES = {
    "Completed": "green",
    "Succeeded": "green",
    "Failed": "bold red",
    "Canceling": "yellow",
    "Canceled": "yellow",
    "Skipped": "dim",
    "Queued": "dim",
}
UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def phase_style(phase: str) -> str:
    return PHASE_STYLES.get(phase, "cyan")


def _unit(value: float) -> int:
    index = 0
    while value >= 1024 and index < len(UNITS) - 1:
        value /= 1024
        index += 1
    return index


def size(value: float) -> str:
    """``268435456`` → ``256.0 MiB``."""
    index = _unit(value)
    return f"{value / 1024**index:.1f} {UNITS[index]}" if index else f"{int(value)} B"


def size_pair(done: float, total: float) -> str:
    """``128.0/256.0 MiB``: both in the unit of the total."""
    index = _unit(total)
    if not index:
        return f"{int(done)}/{int(total)} B"
    return f"{done / 1024**index:.1f}/{total / 1024**index:.1f} {UNITS[index]}"


def rate(bytes_per_second: float | None) -> str:
    return "" if bytes_per_second is None else f"{size(bytes_per_second)}/s"


def clock(seconds: float | None) -> str:
    """``75`` → ``1:15``; ``3725`` → ``1:02:05``."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def duration(seconds: float | None) -> str:
    """``12.34`` → ``12.3s``; ``125`` → ``2m05s``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m{secs:02d}s" if minutes >= 60 else f"{minutes}m{secs:02d}s"
