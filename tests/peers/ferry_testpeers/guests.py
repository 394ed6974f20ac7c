"""Real test guests (``peers/guests/build.sh``) and a boot check for them.

:func:`built_guest` builds a guest's disk from its recipe, or takes it from the per-machine
cache; :func:`boot_guest` boots a disk under ``qemu-system-x86_64 -accel tcg`` (KVM hangs
on this kind of machine) with its console on a file, and waits, with a deadline, for the
``FERRY-BOOT-OK host=… root=… ips=…`` line the guest prints once it is up. The disk is
opened with ``snapshot=on``: a boot never changes it.
"""

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .waiting import wait_for

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "peers" / "guests" / "build.sh"

# The MAC the guests' .link file names ``ens192`` (a VMware OUI, as vSphere assigns).
VMWARE_MAC = "00:50:56:8f:00:01"

MARKER = re.compile(r"FERRY-BOOT-OK host=(?P<host>\S+) root=(?P<root>\S+) ips=(?P<ips>\S+)")
# Console lines that mean the boot has failed for good: no need to wait for the deadline.
FAILURES = (
    "Gave up waiting for root",
    "ALERT!",
    "Kernel panic",
    "(initramfs)",
)

DiskBus = Literal["sata", "virtio-blk", "virtio-scsi"]


class GuestToolMissingError(RuntimeError):
    """A program needed to build or boot a guest is not installed."""


class GuestBuildError(RuntimeError):
    """The guest's recipe failed; the message has the end of its output."""


@dataclass(frozen=True)
class BootMarker:
    """The fields of the guest's ``FERRY-BOOT-OK`` line."""

    host: str
    root: str
    ips: tuple[tuple[str, str], ...]  # (interface, address/prefix)


@dataclass(frozen=True)
class BootResult:
    """How a boot ended: with the marker, or with a failure line or the deadline."""

    marker: BootMarker | None
    seconds: float
    failure: str | None
    console: str

    @property
    def reached(self) -> bool:
        return self.marker is not None


def _require(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise GuestToolMissingError(f"{program} is not installed; run scripts/install-debs.sh")
    return found


def built_guest(name: str = "bios") -> Path:
    """The disk of guest ``name``, built by ``peers/guests/build.sh`` unless cached.

    Raises :class:`GuestBuildError`, with the end of the build's output, when the recipe
    fails, for example because mmdebstrap or libguestfs is missing.
    """
    done = subprocess.run(["bash", str(BUILD_SCRIPT), name], cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise GuestBuildError(f"peers/guests/build.sh {name} exited with {done.returncode}:\n{output}")
    return (REPO / ".peers" / "guests" / f"{name}.raw").resolve(strict=True)


def parse_marker(console: str) -> BootMarker | None:
    """The first ``FERRY-BOOT-OK`` line of a console log, parsed."""
    found = MARKER.search(console)
    if found is None:
        return None
    ips: tuple[tuple[str, str], ...] = ()
    if found["ips"] != "none":
        pairs = (item.partition(":") for item in found["ips"].split(","))
        ips = tuple((iface, addr) for iface, _, addr in pairs)
    return BootMarker(host=found["host"], root=found["root"], ips=ips)


def _disk_args(disk: Path, bus: DiskBus) -> list[str]:
    drive = ["-drive", f"file={disk},format=raw,if=none,id=disk0,snapshot=on,cache=unsafe"]
    if bus == "sata":
        return [*drive, "-device", "ahci,id=ahci0", "-device", "ide-hd,drive=disk0,bus=ahci0.0"]
    if bus == "virtio-blk":
        return [*drive, "-device", "virtio-blk-pci,drive=disk0"]
    return [*drive, "-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-hd,drive=disk0,bus=scsi0.0"]


def boot_guest(
    disk: Path,
    console_log: Path,
    *,
    disk_bus: DiskBus = "sata",
    nic: str = "e1000e",
    mac: str = VMWARE_MAC,
    timeout: float = 300.0,
    memory_mib: int = 1024,
) -> BootResult:
    """Boot ``disk`` (BIOS) under TCG until the marker, a failure line, or ``timeout`` s."""
    qemu = _require("qemu-system-x86_64")
    console_log.write_bytes(b"")
    argv = [
        qemu, "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-smp", "1", "-m", str(memory_mib),
        "-display", "none", "-vga", "none", "-monitor", "none", "-no-reboot",
        "-serial", f"file:{console_log}",
        *_disk_args(disk, disk_bus),
        "-netdev", "user,id=net0", "-device", f"{nic},netdev=net0,mac={mac}",
    ]  # fmt: skip
    start = time.monotonic()
    qemu_process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def outcome() -> tuple[BootMarker | None, str | None] | None:
        """The marker or a failure once the console or qemu shows one; None while it boots."""
        console = console_log.read_text(errors="replace")
        marker = parse_marker(console)
        if marker is not None:
            return marker, None
        failure = next((line for line in FAILURES if line in console), None)
        if failure is not None:
            return None, failure
        if qemu_process.poll() is not None:
            output = qemu_process.stdout.read().decode(errors="replace") if qemu_process.stdout else ""
            return None, f"qemu exited with {qemu_process.returncode}: {output.strip()}"
        return None

    try:
        try:
            marker, failure = wait_for(outcome, timeout=timeout, what="the boot marker", interval=0.5)
        except AssertionError:
            marker, failure = None, f"no marker within {timeout:.0f}s"
    finally:
        seconds = time.monotonic() - start
        qemu_process.kill()
        qemu_process.wait()
        if qemu_process.stdout:
            qemu_process.stdout.close()
    return BootResult(marker=marker, seconds=seconds, failure=failure, console=console_log.read_text(errors="replace"))
