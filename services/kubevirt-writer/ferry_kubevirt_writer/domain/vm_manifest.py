"""The KubeVirt ``VirtualMachine`` body for a :class:`TargetVm`.

Called by the handlers after the disks' volumes exist (see :mod:`volumes` for their
names). Pure: validates the input and returns a plain JSON-able dict, no I/O.
"""

from typing import Any

from ferry_kubevirt_writer.domain.volumes import label_value, volume_name
from ferry_shared import labels
from ferry_shared.dns1123 import is_dns1123_label
from ferry_shared.target_vm import TargetDisk, TargetNic, TargetVm

DISK_BUSES = ("virtio", "sata", "scsi")
NIC_MODELS = ("virtio", "e1000e")


def _check(vm: TargetVm) -> None:
    if not is_dns1123_label(vm.name):
        raise ValueError(f"VM name '{vm.name}' is not a DNS-1123 label")
    if not vm.namespace:
        raise ValueError(f"VM '{vm.name}' has no target namespace")
    if vm.cpu_sockets < 1 or vm.cores_per_socket < 1:
        raise ValueError(f"VM '{vm.name}': sockets and cores per socket must be at least 1")
    if vm.memory_mib < 1:
        raise ValueError(f"VM '{vm.name}': memory must be at least 1 MiB, got {vm.memory_mib}")
    if vm.firmware not in ("bios", "efi"):
        raise ValueError(f"VM '{vm.name}': firmware must be bios or efi, got '{vm.firmware}'")
    if vm.secure_boot and vm.firmware != "efi":
        raise ValueError(f"VM '{vm.name}': secure boot needs EFI firmware")
    for disk in vm.disks:
        if disk.bus not in DISK_BUSES:
            raise ValueError(f"VM '{vm.name}' disk {disk.key}: bus must be one of {DISK_BUSES}, got '{disk.bus}'")
    for nic in vm.nics:
        _check_nic(vm.name, nic)
    if sum(nic.destination == "pod" for nic in vm.nics) > 1:
        raise ValueError(f"VM '{vm.name}': at most one NIC can be on the pod network")


def _check_nic(vm_name: str, nic: TargetNic) -> None:
    if nic.model not in NIC_MODELS:
        raise ValueError(f"VM '{vm_name}' NIC {nic.mac}: model must be one of {NIC_MODELS}, got '{nic.model}'")
    if nic.destination == "multus":
        namespace, _, name = nic.nad.partition("/")
        if not namespace or not name:
            raise ValueError(f"VM '{vm_name}' NIC {nic.mac}: a multus NIC needs a NAD as 'namespace/name'")
    elif nic.destination != "pod":
        raise ValueError(f"VM '{vm_name}' NIC {nic.mac}: destination must be pod or multus, got '{nic.destination}'")


def _firmware(vm: TargetVm) -> dict[str, Any]:
    if vm.firmware == "efi":
        return {"bootloader": {"efi": {"secureBoot": vm.secure_boot}}}
    return {"bootloader": {"bios": {}}}


def _disk(index: int, disk: TargetDisk) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": f"disk-{index}", "disk": {"bus": disk.bus}}
    if index == 0:
        entry["bootOrder"] = 1
    return entry


def _volume(vm: TargetVm, index: int, disk: TargetDisk) -> dict[str, Any]:
    name = volume_name(vm.name, index)
    if disk.use_datavolume:
        return {"name": f"disk-{index}", "dataVolume": {"name": name}}
    return {"name": f"disk-{index}", "persistentVolumeClaim": {"claimName": name}}


def _interface(index: int, nic: TargetNic) -> dict[str, Any]:
    binding = "masquerade" if nic.destination == "pod" else "bridge"
    return {"name": f"nic-{index}", "macAddress": nic.mac, "model": nic.model, binding: {}}


def _network(index: int, nic: TargetNic) -> dict[str, Any]:
    if nic.destination == "pod":
        return {"name": f"nic-{index}", "pod": {}}
    return {"name": f"nic-{index}", "multus": {"networkName": nic.nad}}


def _domain(vm: TargetVm) -> dict[str, Any]:
    devices: dict[str, Any] = {
        "disks": [_disk(i, disk) for i, disk in enumerate(vm.disks)],
        "interfaces": [_interface(i, nic) for i, nic in enumerate(vm.nics)],
    }
    if vm.vtpm:
        devices["tpm"] = {"persistent": True}
    domain: dict[str, Any] = {
        "cpu": {"sockets": vm.cpu_sockets, "cores": vm.cores_per_socket, "threads": 1},
        "memory": {"guest": f"{vm.memory_mib}Mi"},
        "resources": {"requests": {"memory": f"{vm.memory_mib}Mi"}},
        "firmware": _firmware(vm),
        "devices": devices,
    }
    if vm.secure_boot:
        domain["features"] = {"smm": {"enabled": True}}
    return domain


def virtual_machine(vm: TargetVm) -> dict[str, Any]:
    """The ``kubevirt.io/v1`` VirtualMachine body: runs (``Always``) when the source was on,
    else ``Halted``; disks and NICs in source order, the first disk boots."""
    _check(vm)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            "name": vm.name,
            "namespace": vm.namespace,
            "labels": {
                **labels.MANAGED_BY_FERRY,
                labels.PLAN: label_value(vm.plan),
                labels.SOURCE_PROVIDER: label_value(vm.source_provider),
                labels.SOURCE_VM_ID: label_value(vm.source_vm_id),
            },
            "annotations": {
                labels.SOURCE_VM_NAME: vm.source_vm_name,
                labels.SOURCE_PROVIDER: vm.source_provider,
                labels.SOURCE_VM_ID: vm.source_vm_id,
            },
        },
        "spec": {
            "runStrategy": "Always" if vm.run else "Halted",
            "template": {
                "spec": {
                    "domain": _domain(vm),
                    "networks": [_network(i, nic) for i, nic in enumerate(vm.nics)],
                    "volumes": [_volume(vm, i, disk) for i, disk in enumerate(vm.disks)],
                }
            },
        },
    }
