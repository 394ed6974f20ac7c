"""Turns cached vSphere objects into inventory records (``ferry_shared.inventory``).

:func:`kind_of` says which record kind an object is (or None for the helper objects the
cache also holds: standalone compute resources and distributed switches);
:func:`build_record` builds it, delegating VMs to :mod:`.vm_record`.
"""

from pyVmomi import vim

from ferry_inventory.adapters.vsphere.cache import ObjectCache, ObjectState
from ferry_inventory.adapters.vsphere.nics import NetworkLookup
from ferry_inventory.adapters.vsphere.vm_record import vm_record
from ferry_inventory.domain.ports import KindAndRecord
from ferry_shared.inventory import (
    ClusterRecord,
    DatacenterRecord,
    DatastoreRecord,
    FolderRecord,
    HostRecord,
    NetworkRecord,
    Record,
)

KINDS: tuple[tuple[type, str], ...] = (
    (vim.VirtualMachine, "vm"),
    (vim.Network, "network"),
    (vim.Datastore, "datastore"),
    (vim.HostSystem, "host"),
    (vim.ClusterComputeResource, "cluster"),
    (vim.Datacenter, "datacenter"),
    (vim.Folder, "folder"),
)


def kind_of(obj: object) -> str | None:
    for cls, kind in KINDS:
        if isinstance(obj, cls):
            return kind
    return None


def _network(state: ObjectState, cache: ObjectCache) -> NetworkRecord:
    datacenter = cache.datacenter_name(state)
    if isinstance(state.ref, vim.dvs.DistributedVirtualPortgroup):
        switch = cache.name(state.ref_id("config.distributedVirtualSwitch"))
        return NetworkRecord(
            id=state.id, name=state.name, kind="distributed", switch_name=switch, datacenter_name=datacenter
        )
    kind = "opaque" if isinstance(state.ref, vim.OpaqueNetwork) else "standard"
    return NetworkRecord(id=state.id, name=state.name, kind=kind, datacenter_name=datacenter)


def _host(state: ObjectState, cache: ObjectCache) -> HostRecord:
    compute = cache.get(state.ref_id("parent"))
    in_cluster = compute is not None and isinstance(compute.ref, vim.ClusterComputeResource)
    return HostRecord(
        id=state.id,
        name=state.name,
        cluster_name=compute.name if compute is not None and in_cluster else "",
        datacenter_name=cache.datacenter_name(state),
        maintenance_mode=state.flag("runtime.inMaintenanceMode"),
        connection_state=state.text("runtime.connectionState") or "connected",
    )


def build_record(state: ObjectState, cache: ObjectCache, networks: NetworkLookup) -> KindAndRecord | None:
    """The record of one cached object, with its kind; None for helper objects."""
    kind = kind_of(state.ref)
    record: Record
    if kind is None:
        return None
    if kind == "vm":
        record = vm_record(state, cache, networks)
    elif kind == "network":
        record = _network(state, cache)
    elif kind == "datastore":
        record = DatastoreRecord(
            id=state.id,
            name=state.name,
            type=state.text("summary.type"),
            capacity_bytes=state.number("summary.capacity"),
            free_bytes=state.number("summary.freeSpace"),
            datacenter_name=cache.datacenter_name(state),
        )
    elif kind == "host":
        record = _host(state, cache)
    elif kind == "cluster":
        record = ClusterRecord(id=state.id, name=state.name, datacenter_name=cache.datacenter_name(state))
    elif kind == "datacenter":
        record = DatacenterRecord(id=state.id, name=state.name)
    else:
        record = FolderRecord(id=state.id, name=state.name, path=cache.inventory_path(state))
    return kind, record
