"""The names, labels and ports of a VM's disk sink, shared by the pod (:mod:`.sink_pod`),
its TLS Secret (:mod:`.sink_tls`) and its NetworkPolicy (:mod:`.sink_network`). Pure."""

import hashlib

from ferry_kubevirt_writer.domain.volumes import MAX_NAME, label_value
from ferry_shared import labels
from ferry_shared.target_vm import TargetVm

FIRST_PORT = 10809  # NBD's registered port
_SUFFIX = "-disk-sink"


def sink_pod_name(vm_name: str) -> str:
    """``<vm>-disk-sink``, the VM part shortened (plus a hash) to stay within 63 characters."""
    if len(vm_name) + len(_SUFFIX) <= MAX_NAME:
        return f"{vm_name}{_SUFFIX}"
    tag = f"-{hashlib.sha256(vm_name.encode()).hexdigest()[:5]}"
    return f"{vm_name[: MAX_NAME - len(_SUFFIX) - len(tag)].rstrip('-')}{tag}{_SUFFIX}"


def sink_port(index: int) -> int:
    return FIRST_PORT + index


def sink_identity(vm: TargetVm) -> dict[str, str]:
    """The labels that pick out ``vm``'s sink pod (its NetworkPolicy's pod selector)."""
    return {labels.ROLE: labels.SINK_ROLE, labels.VM: label_value(vm.name)}


def sink_labels(migration: str, vm: TargetVm) -> dict[str, str]:
    """The labels of the sink's pod, Secret and NetworkPolicy, which
    :mod:`~ferry_kubevirt_writer.domain.ownership` recognises them by."""
    return {**labels.MANAGED_BY_FERRY, **sink_identity(vm), labels.MIGRATION: label_value(migration)}
