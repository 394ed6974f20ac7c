"""Checks a :class:`TargetVm` from a command before anything is written for it.

Called by the handlers first, so a bad blueprint becomes one permanent failure that
says what is wrong, whatever the target; cleanup only needs names that can name
something. Pure.
"""

from ferry_kubevirt_writer.domain.vm_manifest import virtual_machine
from ferry_kubevirt_writer.domain.volumes import volume_bodies
from ferry_shared.dns1123 import is_dns1123_label
from ferry_shared.target_vm import TargetVm


def check_target_vm(vm: TargetVm) -> None:
    """Raise ``ValueError`` naming the first thing in ``vm`` no target could accept."""
    if not is_dns1123_label(vm.namespace):
        raise ValueError(f"target namespace '{vm.namespace}' of VM '{vm.name}' is not a DNS-1123 label")
    virtual_machine(vm)  # name, CPU, memory, firmware, buses, NICs
    volume_bodies(vm)  # capacities, volume and access modes
    keys = [disk.key for disk in vm.disks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"VM '{vm.name}' lists a disk key more than once: {keys}")


def has_valid_names(vm: TargetVm) -> bool:
    """Whether ``vm``'s name and namespace could name objects (and directories) at all."""
    return is_dns1123_label(vm.name) and is_dns1123_label(vm.namespace)
