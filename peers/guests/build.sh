#!/usr/bin/env bash
# Builds the real test guests: small Debian bookworm systems that look as if they came
# from VMware (open-vm-tools, /dev/sda1 in fstab and on the kernel command line, a
# static IP on ens192, an initramfs with VMware/SATA/SCSI storage drivers and no virtio),
# and print a FERRY-BOOT-OK marker line on the serial console once booted.
#
# No loop device and no mount on the host: mmdebstrap makes the root file system as a
# tarball, then libguestfs (in its own TCG appliance) partitions a sparse raw disk, makes
# ext4, unpacks the tarball and installs GRUB to the MBR from inside the guest's tree.
#
# Each disk is cached per machine under $FERRY_GUESTS_CACHE (default
# ~/.cache/ferry/guests) in a folder named by a hash of the recipe's inputs (this script
# and peers/guests/rootfs), so it is rebuilt only when the recipe changes (not when
# Debian publishes updates); .peers/guests/<name>.raw links to the current one.
# Usage: peers/guests/build.sh [GUEST...]   (default: bios; known: bios)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cache=${FERRY_GUESTS_CACHE:-$HOME/.cache/ferry/guests}
links="$root/.peers/guests"
mkdir -p "$cache" "$links"
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg

suite=bookworm
size=2G
packages=systemd-sysv,udev,kmod,iproute2,initramfs-tools,linux-image-amd64,open-vm-tools

recipe_hash() { # hash of the words and files that decide a disk
  { echo "$suite $size $packages $*"; cat peers/guests/build.sh
    find peers/guests/rootfs -type f | LC_ALL=C sort | while read -r f; do
      echo "$f"; stat -c %a "$f"; cat "$f"; done; } | sha256sum | cut -c1-16
}

for tool in mmdebstrap guestfish; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-debs.sh" >&2; exit 1; }
done

# rootfs TARBALL HOSTNAME BOOTLOADER-PACKAGE: the guest's files, VMware-like, as a tarball.
rootfs() {
  local tar=$1 host=$2 loader=$3
  mmdebstrap --mode=auto --variant=minbase --include="$packages,$loader" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="sync-in peers/guests/rootfs /" \
    --customize-hook="echo $host >\"\$1/etc/hostname\"" \
    --customize-hook="printf '127.0.0.1 localhost\n127.0.1.1 $host\n' >\"\$1/etc/hosts\"" \
    --customize-hook='chroot "$1" passwd -d root' \
    --customize-hook='chroot "$1" systemctl enable systemd-networkd ferry-boot-marker.service' \
    --customize-hook='chroot "$1" update-initramfs -u -k all' \
    --customize-hook='if chroot "$1" sh -c "lsinitramfs /boot/initrd.img-*" | grep -q virtio; then
        echo "the initramfs has virtio drivers" >&2; exit 1; fi' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$suite" "$tar"
}

build_bios() { # build_bios DIR: MBR, one ext4 partition, GRUB (grub-pc) in the MBR
  local dir=$1
  rootfs "$dir/rootfs.tar" ferry-bios-guest grub-pc
  truncate -s "$size" "$dir/disk.raw"
  guestfish --rw -a "$dir/disk.raw" <<EOF
run
part-init /dev/sda mbr
part-add /dev/sda p 2048 -1
part-set-bootable /dev/sda 1 true
mkfs ext4 /dev/sda1 label:ferry-root
mount /dev/sda1 /
tar-in $dir/rootfs.tar / xattrs:true acls:true
EOF
  # A second appliance run: in the one that made the partition table, grub-install
  # failed ("embedding is not possible, but this is required for cross-disk install").
  guestfish --rw -a "$dir/disk.raw" -m /dev/sda1 <<EOF
command "grub-install --target=i386-pc /dev/sda"
command "update-grub"
EOF
  rm "$dir/rootfs.tar"
}

build() { # build NAME: builds the guest unless the cached disk exists, and links it
  local name=$1 hash dir
  hash=$(recipe_hash "$name")
  dir="$cache/$name-$hash"
  if [ ! -f "$dir/disk.raw" ]; then
    echo "building guest $name ($hash)..."
    local start=$SECONDS
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    "build_$name" "$dir.tmp"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    echo "built guest $name in $((SECONDS - start))s"
  fi
  ln -sfn "$dir/disk.raw" "$links/$name.raw"
}

[ $# -gt 0 ] || set -- bios
for name in "$@"; do
  case $name in
    bios) build "$name" ;;
    *) echo "unknown guest: $name (known: bios)" >&2; exit 2 ;;
  esac
done
