#!/usr/bin/env bash
# Installs the Debian disk tools the tests and benchmarks use (qemu-img, qemu-nbd,
# nbdkit with its curl plugin, nbdcopy) when any of them is missing.
set -euo pipefail
need=()
command -v qemu-img >/dev/null && command -v qemu-nbd >/dev/null || need+=(qemu-utils)
command -v nbdkit >/dev/null || need+=(nbdkit)
command -v nbdcopy >/dev/null || need+=(libnbd-bin)
command -v curl >/dev/null || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
