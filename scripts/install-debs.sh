#!/usr/bin/env bash
# Installs the Debian tools the tests, benchmarks and image builds use (qemu-img, qemu-nbd,
# nbdkit with its curl plugin, nbdcopy, mmdebstrap, umoci, skopeo, and for the test guests
# qemu-system-x86_64, libguestfs and a kernel for its appliance) when any is missing.
set -euo pipefail
need=()
command -v qemu-img >/dev/null && command -v qemu-nbd >/dev/null || need+=(qemu-utils)
command -v nbdkit >/dev/null || need+=(nbdkit)
command -v nbdcopy >/dev/null || need+=(libnbd-bin)
command -v curl >/dev/null || need+=(curl)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)  # the images' root filesystems
command -v umoci >/dev/null || need+=(umoci)            # … made OCI images
command -v skopeo >/dev/null || need+=(skopeo)          # … and archives
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)  # boots the test guests
command -v guestfish >/dev/null || need+=(libguestfs-tools)          # … builds their disks
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)      # … libguestfs's appliance
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
