"""The NetworkPolicy that lets only Ferry's transfer pods reach a VM's disk-sink pod.

It selects the sink pod by its labels and allows ingress to the pod's NBD ports only
from pods labelled as Ferry's transfer (``app.kubernetes.io/name: ferry``,
``app.kubernetes.io/component: transfer``, the Helm chart's labels) in Ferry's own
namespace (by ``kubernetes.io/metadata.name``, which the API server sets on every
namespace). Being an ingress policy that selects the pod, it also denies every other
ingress to it. Pure: called by the Kubernetes adapter when it creates the sink.
"""

from typing import Any

from ferry_kubevirt_writer.domain.sink_names import sink_identity, sink_labels, sink_pod_name, sink_port
from ferry_shared import labels
from ferry_shared.target_vm import TargetVm

TRANSFER_POD_LABELS = {"app.kubernetes.io/name": "ferry", "app.kubernetes.io/component": "transfer"}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def sink_policy_name(vm: TargetVm) -> str:
    """The policy is named after the pod it guards."""
    return sink_pod_name(vm.name)


def sink_network_policy(migration: str, vm: TargetVm, *, transfer_namespace: str) -> dict[str, Any]:
    """The ``networking.k8s.io/v1`` NetworkPolicy of ``vm``'s sink pod."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": sink_policy_name(vm),
            "namespace": vm.namespace,
            "labels": sink_labels(migration, vm),
            "annotations": {labels.MIGRATION: migration, labels.SOURCE_VM_ID: vm.source_vm_id},
        },
        "spec": {
            "podSelector": {"matchLabels": sink_identity(vm)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: transfer_namespace}},
                            "podSelector": {"matchLabels": dict(TRANSFER_POD_LABELS)},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": sink_port(index)} for index in range(len(vm.disks))],
                }
            ],
        },
    }
