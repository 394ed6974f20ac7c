"""Read-only views of a source's and a target's inventory, as validation needs them."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from ferry_shared.inventory import (
    DatastoreRecord,
    HostRecord,
    NadRecord,
    NamespaceRecord,
    NetworkRecord,
    StorageClassRecord,
    TargetVmRecord,
    VmRecord,
)

R = TypeVar("R", VmRecord, NetworkRecord, DatastoreRecord)


def _index_by_id_and_name(records: Iterable[R]) -> dict[str, list[R]]:
    index: dict[str, list[R]] = {}
    for record in records:
        index.setdefault(record.id, []).append(record)
        if record.name != record.id:
            index.setdefault(record.name, []).append(record)
    return index


@dataclass
class SourceView:
    """A source provider's VMs, networks, datastores and hosts, found by id or name."""

    vms: list[VmRecord] = field(default_factory=list)
    networks: list[NetworkRecord] = field(default_factory=list)
    datastores: list[DatastoreRecord] = field(default_factory=list)
    hosts: list[HostRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._vms = _index_by_id_and_name(self.vms)
        self._networks = _index_by_id_and_name(self.networks)
        self._datastores = _index_by_id_and_name(self.datastores)
        self._hosts = {host.id: host for host in self.hosts}

    def find_vms(self, ref: str) -> list[VmRecord]:
        return self._vms.get(ref, [])

    def find_networks(self, ref: str) -> list[NetworkRecord]:
        return self._networks.get(ref, [])

    def find_datastores(self, ref: str) -> list[DatastoreRecord]:
        return self._datastores.get(ref, [])

    def host(self, host_id: str) -> HostRecord | None:
        return self._hosts.get(host_id)


@dataclass
class TargetView:
    """A target provider's namespaces, storage classes, NADs and existing VMs.

    ``checked`` is False for a local directory target, which has none of these.
    """

    checked: bool = True
    namespaces: list[NamespaceRecord] = field(default_factory=list)
    storage_classes: list[StorageClassRecord] = field(default_factory=list)
    nads: list[NadRecord] = field(default_factory=list)
    vms: list[TargetVmRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._namespaces = {ns.name for ns in self.namespaces}
        self._vm_names = {(vm.namespace, vm.name) for vm in self.vms}
        self._vms_by_mac: dict[str, TargetVmRecord] = {}
        for vm in self.vms:
            for mac in vm.macs:
                self._vms_by_mac.setdefault(mac.lower(), vm)  # the first one, as a scan would find

    def has_namespace(self, name: str) -> bool:
        return not self.checked or name in self._namespaces

    def has_storage_class(self, name: str) -> bool:
        return not self.checked or any(sc.name == name for sc in self.storage_classes)

    def has_nad(self, namespaced_name: str) -> bool:
        return not self.checked or any(f"{n.namespace}/{n.name}" == namespaced_name for n in self.nads)

    def vm_exists(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._vm_names

    def vm_with_mac(self, mac: str) -> TargetVmRecord | None:
        return self._vms_by_mac.get(mac.lower())
