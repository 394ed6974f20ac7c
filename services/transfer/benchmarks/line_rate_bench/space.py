"""Where the simulator's disks and the copies go: /dev/shm when it has room, else /tmp.

Disks and copies on tmpfs keep the benchmark off the root disk, so the figures measure
the transfer rather than the disk. tmpfs lives in memory, so its room is the smaller of
its free space and the memory available minus a reserve for the processes being measured.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

GiB = 1024**3
SHM = Path("/dev/shm")
FALLBACK = Path("/tmp")
RESERVE = 2 * GiB  # memory left for the simulator, the tools and everything else on the machine


@dataclass(frozen=True)
class Placement:
    """A chosen directory and why it was chosen (printed and stored with the results)."""

    path: Path
    reason: str


def mem_available() -> int:
    """``MemAvailable`` of /proc/meminfo, in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemAvailable line")


def room(path: Path) -> int:
    """Bytes that can still be written under ``path`` (for tmpfs, also bounded by free memory)."""
    free = shutil.disk_usage(path).free
    if _is_tmpfs(path):
        free = min(free, mem_available() - RESERVE)
    return max(free, 0)


def choose(explicit: Path | None, need: int, purpose: str) -> Placement:
    """``explicit`` if given (it must have room), else /dev/shm with room for ``need`` bytes, else /tmp."""
    if explicit is not None:
        explicit.mkdir(parents=True, exist_ok=True)
        if room(explicit) < need:
            raise SystemExit(
                f"{explicit} has {room(explicit) / GiB:.1f} GiB free, {purpose} needs {need / GiB:.1f} GiB; "
                "free some space, pick another directory or use --quick"
            )
        return Placement(explicit, "given on the command line")
    shm_room = room(SHM) if SHM.is_dir() else 0
    if shm_room >= need:
        return Placement(SHM, f"tmpfs, {shm_room / GiB:.1f} GiB of room for {need / GiB:.1f} GiB")
    tmp_room = room(FALLBACK)
    if tmp_room >= need:
        return Placement(
            FALLBACK,
            f"/dev/shm has {shm_room / GiB:.1f} GiB of room, {purpose} needs {need / GiB:.1f} GiB, "
            f"so the root disk ({tmp_room / GiB:.1f} GiB free): figures include its write speed",
        )
    raise SystemExit(
        f"{purpose} needs {need / GiB:.1f} GiB, but /dev/shm has {shm_room / GiB:.1f} and /tmp "
        f"{tmp_room / GiB:.1f} GiB of room; free some space, pass a directory or use --quick"
    )


def _is_tmpfs(path: Path) -> bool:
    target = os.path.realpath(path)
    best, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        mount, fstype = fields[1], fields[2]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, kind = mount, fstype
    return kind == "tmpfs"
