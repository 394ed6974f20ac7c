"""The BIOS test guest (``peers/guests/build.sh bios``) is a VMware-like Debian system: it
boots from a SATA disk and prints its marker (hostname, ``/dev/sda1`` root, static IP on
``ens192``), and it does not boot from virtio-blk, since its initramfs has no virtio
drivers. That second boot is what guest conversion must later fix.

Nothing is skipped: a missing qemu, mmdebstrap or libguestfs fails the test."""

from pathlib import Path

import pytest

from ferry_testpeers.guests import BootMarker, boot_guest, built_guest

pytestmark = [pytest.mark.guests]


@pytest.fixture(scope="module")
def bios_disk() -> Path:
    return built_guest("bios")


@pytest.mark.timeout(1800)  # a cold build (mmdebstrap + libguestfs under TCG) takes minutes
def test_bios_guest_boots_from_sata_as_on_vmware(bios_disk: Path, tmp_path: Path) -> None:
    result = boot_guest(bios_disk, tmp_path / "console.log", disk_bus="sata", nic="e1000e", timeout=600)

    assert result.reached, f"{result.failure} after {result.seconds:.0f}s:\n{result.console[-4000:]}"
    assert result.marker == BootMarker(host="ferry-bios-guest", root="/dev/sda1", ips=(("ens192", "10.0.2.50/24"),))


@pytest.mark.timeout(900)
def test_bios_guest_does_not_boot_from_virtio_blk(bios_disk: Path, tmp_path: Path) -> None:
    result = boot_guest(bios_disk, tmp_path / "console.log", disk_bus="virtio-blk", nic="e1000e", timeout=600)

    assert not result.reached, "the unconverted guest booted from virtio-blk"
    assert result.failure in ("Gave up waiting for root", "ALERT!", "(initramfs)"), (
        f"{result.failure} after {result.seconds:.0f}s:\n{result.console[-4000:]}"
    )
