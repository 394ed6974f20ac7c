"""Whether an object found on the target was created by Ferry for a given VM.

The writer creates objects under deterministic names; when a name is already taken
(a redelivered command, or someone else's object) these checks of the object's labels
decide whether to take it as ours or to refuse, and cleanup deletes only what passes
them. Pure.
"""

from collections.abc import Mapping

from ferry_kubevirt_writer.domain.volumes import MANAGED_BY, label_value
from ferry_shared.target_vm import TargetVm

SOURCE_VM_LABEL = "ferry.dev/source-vm"  # on volumes
SOURCE_VM_ID_LABEL = "ferry.dev/source-vm-id"  # on VirtualMachines


def _managed(labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in MANAGED_BY.items())


def volume_is_ours(labels: Mapping[str, str] | None, vm: TargetVm) -> bool:
    """A PVC or DataVolume that Ferry made for ``vm``'s source VM."""
    labels = labels or {}
    return _managed(labels) and labels.get(SOURCE_VM_LABEL) == label_value(vm.source_vm_id)


def vm_is_ours(labels: Mapping[str, str] | None, vm: TargetVm) -> bool:
    """A VirtualMachine that Ferry made from ``vm``'s source VM."""
    labels = labels or {}
    return _managed(labels) and labels.get(SOURCE_VM_ID_LABEL) == label_value(vm.source_vm_id)
