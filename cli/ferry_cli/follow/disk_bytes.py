"""A disk's copy in two measures: the logical size covered (holes included) and the bytes
actually read from the source. Bars show the first; rates and ETAs come from the second,
over the bytes still to read when the transfer knows them (pure; no I/O).

A disk of the planner's view carries ``bytes_done``/``bytes_total`` and, from transfers
that report them, ``bytes_read``/``bytes_to_read``; a missing or null count is unknown and
is said so, never guessed.
"""

from dataclasses import dataclass
from typing import Any

from ferry_cli.follow import formats


@dataclass(frozen=True, slots=True)
class DiskBytes:
    done: int
    total: int
    read: int | None = None
    """Read from the source so far; None when the transfer did not report it."""
    to_read: int | None = None
    """To read in all (CBT's allocated extents, or the whole disk); None when unknown."""
    completed: bool = False

    @classmethod
    def of(cls, disk: dict[str, Any]) -> "DiskBytes":
        """From a disk of the planner's migration view (older planners send no read counts)."""
        return cls(
            done=disk["bytes_done"],
            total=disk["bytes_total"],
            read=disk.get("bytes_read"),
            to_read=disk.get("bytes_to_read"),
            completed=bool(disk.get("completed")),
        )

    @property
    def sparse(self) -> bool:
        """Only part of the disk is read: the rest is unallocated (known from CBT)."""
        return self.to_read is not None and self.to_read < self.total

    def remaining(self) -> int | None:
        """Bytes still to read, or None when unknown."""
        if self.completed:
            return 0
        if self.read is None or self.to_read is None or self.read >= self.to_read:
            return None  # read more than planned (a redelivered copy read ranges whole): not known
        return self.to_read - self.read

    def eta(self, rate: float | None) -> float | None:
        """Seconds left at ``rate`` bytes read per second, or None when the rate or what remains is unknown."""
        remaining = self.remaining()
        if remaining is None or not rate or rate <= 0:
            return None
        return remaining / rate

    def read_note(self) -> str:
        """What was read, next to the covered size: ``5.0 MiB read, rest unallocated``."""
        if self.read is None:
            return "bytes read not reported"
        read = formats.size(self.read)
        if self.completed:
            if self.sparse:
                return f"{read} read, rest unallocated"
            return f"{read} read"
        if self.to_read is None:
            return f"{read} read, allocation unknown"
        if self.sparse:
            return f"{formats.size_pair(self.read, self.to_read)} read, rest unallocated"
        return f"{read} read"

    def live_note(self) -> str:
        """:meth:`read_note` where it tells more than the bar: not for a disk read whole."""
        if self.read is not None and self.to_read is not None and not self.sparse:
            return ""
        return self.read_note()

    def describe(self) -> str:
        """``2.0 GiB of 2.0 GiB (5.0 MiB read, rest unallocated)``; ``0.5/2.0 GiB (…)`` while copying."""
        if self.completed:
            return f"{formats.size(self.total)} of {formats.size(self.total)} ({self.read_note()})"
        return f"{formats.size_pair(self.done, self.total)} ({self.read_note()})"


def total_read(disks: list[dict[str, Any]]) -> int | None:
    """Bytes read over ``disks``, or None when a disk did not report it."""
    total = 0
    for disk in disks:
        count: int | None = disk.get("bytes_read")
        if count is None:
            return None
        total += count
    return total
