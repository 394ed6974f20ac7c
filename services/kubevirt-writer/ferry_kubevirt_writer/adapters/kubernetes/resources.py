"""The Kubernetes resources the writer creates, and how their API paths are called.

Plain data, used by :mod:`.objects` (the calls) and :mod:`.failures` (the messages).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One namespaced resource: core (``group`` empty, called through ``CoreV1Api``
    methods named after ``snake``) or a custom resource (``CustomObjectsApi``)."""

    kind: str
    plural: str
    group: str = ""
    version: str = "v1"
    snake: str = ""  # core only: create_namespaced_<snake>, …
    provided_by: str = ""  # custom only: what installs it

    @property
    def display(self) -> str:
        """``pods`` or ``datavolumes.cdi.kubevirt.io``, as RBAC names it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS = Resource("Pod", "pods", snake="pod")
PVCS = Resource("PersistentVolumeClaim", "persistentvolumeclaims", snake="persistent_volume_claim")
DATA_VOLUMES = Resource("DataVolume", "datavolumes", "cdi.kubevirt.io", "v1beta1", provided_by="CDI")
VIRTUAL_MACHINES = Resource("VirtualMachine", "virtualmachines", "kubevirt.io", "v1", provided_by="KubeVirt")
SECRETS = Resource("Secret", "secrets", snake="secret")
NETWORK_POLICIES = Resource("NetworkPolicy", "networkpolicies", "networking.k8s.io", "v1")
BY_KIND = {
    resource.kind: resource for resource in (PODS, PVCS, DATA_VOLUMES, VIRTUAL_MACHINES, SECRETS, NETWORK_POLICIES)
}
