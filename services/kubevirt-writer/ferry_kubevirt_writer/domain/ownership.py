"""Whether an object found on the target was created by Ferry for a given VM.

The writer creates objects under deterministic names; when a name is already taken
(a redelivered command, or someone else's object) these checks of the object's labels
decide whether to take it as ours or to refuse, and cleanup deletes only what passes
them. The label keys come from :mod:`ferry_shared.labels`; disk-sink pods labelled by
earlier versions (``ferry.io/...``) pass them too. Pure.
"""

from collections.abc import Mapping

from ferry_kubevirt_writer.domain.sink_names import sink_identity
from ferry_kubevirt_writer.domain.volumes import label_value
from ferry_shared import labels as keys
from ferry_shared.target_vm import TargetVm

Labels = Mapping[str, str] | None


def _managed(labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in keys.MANAGED_BY_FERRY.items())


def volume_is_ours(labels: Labels, vm: TargetVm) -> bool:
    """A PVC or DataVolume that Ferry made for ``vm``'s source VM."""
    labels = labels or {}
    return _managed(labels) and labels.get(keys.SOURCE_VM) == label_value(vm.source_vm_id)


def vm_is_ours(labels: Labels, vm: TargetVm) -> bool:
    """A VirtualMachine that Ferry made from ``vm``'s source VM."""
    labels = labels or {}
    return _managed(labels) and labels.get(keys.SOURCE_VM_ID) == label_value(vm.source_vm_id)


def sink_is_ours(labels: Labels, vm: TargetVm) -> bool:
    """A disk-sink pod that Ferry made for ``vm`` (of any migration, by any version)."""
    return all(keys.label_of(labels, key) == value for key, value in sink_identity(vm).items())


def sink_guard_is_ours(labels: Labels, vm: TargetVm) -> bool:
    """A disk sink's TLS Secret or NetworkPolicy that Ferry made for ``vm`` (of any migration):
    today's labels only, as no earlier version made them."""
    labels = labels or {}
    return _managed(labels) and all(labels.get(key) == value for key, value in sink_identity(vm).items())


def sink_migration(labels: Labels) -> str:
    """The (label-safe) migration a disk-sink pod was made for."""
    return keys.label_of(labels, keys.MIGRATION) or ""


def sink_selectors(vm: TargetVm) -> tuple[str, ...]:
    """The label selectors that together find every disk-sink pod Ferry made for ``vm``."""
    return keys.selectors(sink_identity(vm))
