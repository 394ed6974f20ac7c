"""The Kubernetes target adapter: a watcher that keeps a KubeVirt cluster's namespaces,
storage classes (with CDI StorageProfile hints), NetworkAttachmentDefinitions and
VirtualMachines live in the inventory, from Kubernetes list and watch calls.

Modules: ``probe`` (reachability, APIs, permissions), ``feed`` (one resource's
list+watch thread), ``threads`` (blocking calls that never hold up a stop), ``state``
(objects to records), ``session`` (one connection), ``watcher`` (retries). The client
configuration and the failures are shared: :mod:`ferry_shared.kubernetes`.
"""

from ferry_inventory.adapters.kubernetes.watcher import KubernetesWatcher

__all__ = ["KubernetesWatcher"]
