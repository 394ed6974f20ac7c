"""What one timed copy gives (:class:`RunResult`) and the runs of one tool at one worker count."""

import statistics
from dataclasses import dataclass, field

MiB = 1024 * 1024


class RunFailedError(Exception):
    """A copy did not complete (the tool failed or hung); the message says why, without secrets."""


@dataclass(frozen=True)
class RunResult:
    """One completed copy.

    ``bytes_copied``: bytes read from the source (the whole disk for the peers; a CBT-aware
    copy reads only the allocated extents). ``seconds``: wall time of the copy. ``peak_rss``:
    peak resident set size in bytes of each process of the tool, or of each Ferry worker.
    """

    bytes_copied: int
    seconds: float
    peak_rss: tuple[int, ...]


@dataclass
class Series:
    """The runs of one tool (a peer, or Ferry with ``workers`` workers) in one case."""

    tool: str
    workers: int | None  # None for a peer
    is_peer: bool
    process_names: tuple[str, ...] = ()
    runs: list[RunResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    invalid: str | None = None  # a wrong copy: the figure is void

    def speeds(self, capacity: int) -> list[float]:
        """MiB/s of each run: the disk's size over the wall time."""
        return [capacity / MiB / run.seconds for run in self.runs]

    def median(self, capacity: int) -> float | None:
        """Median MiB/s, or None when no run counts (all failed, or a copy was wrong)."""
        if self.invalid is not None or self.failures or not self.runs:
            return None
        return statistics.median(self.speeds(capacity))

    def peak_rss(self) -> tuple[int, ...]:
        """The largest peak RSS of each process (or worker) over the runs."""
        if not self.runs:
            return ()
        width = max(len(run.peak_rss) for run in self.runs)
        return tuple(max(run.peak_rss[i] for run in self.runs if i < len(run.peak_rss)) for i in range(width))
