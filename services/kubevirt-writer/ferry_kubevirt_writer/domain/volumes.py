"""The volumes behind a target VM's disks: deterministic names and PVC/DataVolume bodies.

Called by the handlers (to create the volumes, idempotently by name) and by
:mod:`vm_manifest` (to reference them). Also holds :func:`label_value`, which every
builder uses to make a label value. Pure: returns plain JSON-able dicts, no I/O.
"""

import hashlib
import re
from fractions import Fraction
from typing import Any

from ferry_shared import labels
from ferry_shared.dns1123 import MAX_LABEL, is_dns1123_label
from ferry_shared.target_vm import TargetDisk, TargetVm

MIB = 1024 * 1024
MAX_NAME = MAX_LABEL
MAX_LABEL_VALUE = 63
CDI_DEFAULT_FILESYSTEM_OVERHEAD = 0.055  # CDI's global default (CDIConfig filesystemOverhead)
VOLUME_MODES = ("Filesystem", "Block", "")

_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:5]


def label_value(text: str) -> str:
    """``text`` as a valid label value (≤63 characters of alphanumerics, ``-``, ``_``, ``.``,
    starting and ending alphanumeric). A value that has to change gets a short hash suffix,
    so two different inputs cannot collapse into the same label."""
    if len(text) <= MAX_LABEL_VALUE and _LABEL_VALUE.fullmatch(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    suffix = _short_hash(text)
    head = re.sub(r"[^A-Za-z0-9]+$", "", cleaned[: MAX_LABEL_VALUE - len(suffix) - 1])
    return f"{head}-{suffix}" if head else suffix


def volume_name(vm_name: str, index: int) -> str:
    """The PVC/DataVolume name of disk ``index`` (0-based, source order): ``<vm>-disk-<index>``,
    with the VM part shortened (plus a hash) when the whole would pass 63 characters."""
    if not is_dns1123_label(vm_name):
        raise ValueError(f"VM name '{vm_name}' is not a DNS-1123 label")
    if index < 0:
        raise ValueError(f"disk index must not be negative, got {index}")
    suffix = f"-disk-{index}"
    if len(vm_name) + len(suffix) <= MAX_NAME:
        return f"{vm_name}{suffix}"
    tag = f"-{_short_hash(vm_name)}"
    head = vm_name[: MAX_NAME - len(suffix) - len(tag)].rstrip("-")
    return f"{head}{tag}{suffix}"


def _round_up(value: int | Fraction, unit: int) -> int:
    return -(-value // unit) * unit


def pvc_request_bytes(
    capacity_bytes: int, volume_mode: str, filesystem_overhead: float = CDI_DEFAULT_FILESYSTEM_OVERHEAD
) -> int:
    """The storage to request for a disk of ``capacity_bytes``: the capacity rounded up to a
    whole MiB and, unless the volume is a raw Block device, grown by the filesystem overhead
    the way CDI computes it (``aligned / (1 - overhead)``, so the overhead is that share of
    the *whole* volume and the image still fits), rounded up to a MiB again."""
    _check_capacity(capacity_bytes)
    if not 0 <= filesystem_overhead < 1:
        raise ValueError(f"filesystem overhead must be in [0, 1), got {filesystem_overhead}")
    aligned = _round_up(capacity_bytes, MIB)
    if volume_mode == "Block":
        return aligned
    return _round_up(Fraction(aligned) / (1 - Fraction(str(filesystem_overhead))), MIB)


def _check_capacity(capacity_bytes: int) -> None:
    if capacity_bytes <= 0:
        raise ValueError(f"disk capacity must be more than 0 bytes, got {capacity_bytes}")


def _check_disk(disk: TargetDisk) -> None:
    _check_capacity(disk.capacity_bytes)
    if disk.volume_mode not in VOLUME_MODES:
        raise ValueError(f"disk {disk.key}: volume mode must be Filesystem, Block or empty, got '{disk.volume_mode}'")


def _mib_quantity(size_bytes: int) -> str:
    return f"{_round_up(size_bytes, MIB) // MIB}Mi"


def _metadata(vm: TargetVm, disk: TargetDisk, index: int) -> dict[str, Any]:
    return {
        "name": volume_name(vm.name, index),
        "namespace": vm.namespace,
        "labels": {
            **labels.MANAGED_BY_FERRY,
            labels.PLAN: label_value(vm.plan),
            labels.SOURCE_VM: label_value(vm.source_vm_id),
        },
        "annotations": {labels.SOURCE_FILE: disk.source_file},
    }


def persistent_volume_claim(
    vm: TargetVm, index: int, filesystem_overhead: float = CDI_DEFAULT_FILESYSTEM_OVERHEAD
) -> dict[str, Any]:
    """The ``v1`` PersistentVolumeClaim body for ``vm.disks[index]``."""
    disk = vm.disks[index]
    _check_disk(disk)
    if not disk.access_mode:
        raise ValueError(f"disk {disk.key}: a PersistentVolumeClaim needs an access mode")
    spec: dict[str, Any] = {
        "accessModes": [disk.access_mode],
        "resources": {
            "requests": {
                "storage": _mib_quantity(pvc_request_bytes(disk.capacity_bytes, disk.volume_mode, filesystem_overhead))
            }
        },
    }
    if disk.volume_mode:
        spec["volumeMode"] = disk.volume_mode
    if disk.storage_class:
        spec["storageClassName"] = disk.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _metadata(vm, disk, index), "spec": spec}


def data_volume(vm: TargetVm, index: int) -> dict[str, Any]:
    """The CDI ``DataVolume`` body for ``vm.disks[index]``: a blank volume of the disk's
    capacity (CDI's ``storage`` API adds the filesystem overhead itself)."""
    disk = vm.disks[index]
    _check_disk(disk)
    storage: dict[str, Any] = {"resources": {"requests": {"storage": _mib_quantity(disk.capacity_bytes)}}}
    if disk.access_mode:
        storage["accessModes"] = [disk.access_mode]
    if disk.volume_mode:
        storage["volumeMode"] = disk.volume_mode
    if disk.storage_class:
        storage["storageClassName"] = disk.storage_class
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": _metadata(vm, disk, index),
        "spec": {"source": {"blank": {}}, "storage": storage},
    }


def volume_bodies(vm: TargetVm, filesystem_overhead: float = CDI_DEFAULT_FILESYSTEM_OVERHEAD) -> list[dict[str, Any]]:
    """One PVC or DataVolume body per disk, in source order."""
    return [
        data_volume(vm, index) if disk.use_datavolume else persistent_volume_claim(vm, index, filesystem_overhead)
        for index, disk in enumerate(vm.disks)
    ]
