"""The Kubernetes resources a target's inventory comes from, and how to list them.

Namespaces and StorageClasses are always served; the rest are custom resources that
may be missing: KubeVirt's VirtualMachine is required, CDI's StorageProfile (hints on
storage classes) and Multus' NetworkAttachmentDefinition are optional.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi, StorageV1Api

ListCall = tuple[Callable[..., Any], tuple[str, ...]]
"""A list function of the Kubernetes client and its positional arguments; the same call
with ``watch=True`` (which :class:`kubernetes.watch.Watch` adds) watches."""


@dataclass(frozen=True)
class Resource:
    """One resource type Ferry lists and watches, cluster-wide."""

    key: str  # namespace | storageclass | storageprofile | nad | targetvm
    group: str
    version: str
    plural: str
    required: bool = True
    missing: str = ""  # what its absence means, for the status message

    @property
    def display(self) -> str:
        """``virtualmachines.kubevirt.io`` (``namespaces`` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def custom(self) -> bool:
        return self.group not in ("", "storage.k8s.io")

    def list_call(self, api: ApiClient) -> ListCall:
        if self.key == "namespace":
            return CoreV1Api(api).list_namespace, ()
        if self.key == "storageclass":
            return StorageV1Api(api).list_storage_class, ()
        return CustomObjectsApi(api).list_cluster_custom_object, (self.group, self.version, self.plural)


NAMESPACES = Resource("namespace", "", "v1", "namespaces")
STORAGE_CLASSES = Resource("storageclass", "storage.k8s.io", "v1", "storageclasses")
STORAGE_PROFILES = Resource(
    "storageprofile",
    "cdi.kubevirt.io",
    "v1beta1",
    "storageprofiles",
    required=False,
    missing="CDI is not installed, so storage classes carry no StorageProfile hints (CDI is optional)",
)
NADS = Resource(
    "nad",
    "k8s.cni.cncf.io",
    "v1",
    "network-attachment-definitions",
    required=False,
    missing="Multus is not installed (no NetworkAttachmentDefinition API), so there are no NADs to map to",
)
VIRTUAL_MACHINES = Resource("targetvm", "kubevirt.io", "v1", "virtualmachines")

ALL = (NAMESPACES, STORAGE_CLASSES, STORAGE_PROFILES, NADS, VIRTUAL_MACHINES)
RECORD_KINDS = ("namespace", "storageclass", "nad", "targetvm")
