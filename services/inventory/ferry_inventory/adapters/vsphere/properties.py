"""What the vSphere adapter reads: the managed object types and exactly their properties.

One table, used by the full load, by the live filter (both over one container view of
the root folder) and to tell whether a change reported by vCenter is one we collect.
Property specs match subtypes too: ``ComputeResource`` covers clusters, ``Network``
covers distributed portgroups and opaque networks.
"""

from pyVmomi import vim

VM_PATHS = (
    "name",
    "parent",
    "config.uuid",
    "config.instanceUuid",
    "config.template",
    "config.guestId",
    "config.guestFullName",
    "config.firmware",
    "config.bootOptions.efiSecureBootEnabled",
    "config.changeTrackingEnabled",
    "config.cpuHotAddEnabled",
    "config.memoryHotAddEnabled",
    "config.hardware.numCPU",
    "config.hardware.numCoresPerSocket",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "runtime.powerState",
    "runtime.host",
    "guest.hostName",
    "guest.ipAddress",
    "guest.net",
    "snapshot",
)

PATHS: dict[type, tuple[str, ...]] = {
    vim.VirtualMachine: VM_PATHS,
    vim.HostSystem: ("name", "parent", "runtime.inMaintenanceMode", "runtime.connectionState"),
    vim.ComputeResource: ("name", "parent"),
    vim.Datacenter: ("name", "parent"),
    vim.Folder: ("name", "parent"),
    vim.Datastore: ("name", "parent", "summary.capacity", "summary.freeSpace", "summary.type"),
    vim.Network: ("name", "parent"),
    vim.dvs.DistributedVirtualPortgroup: ("key", "config.distributedVirtualSwitch"),
    vim.OpaqueNetwork: ("summary",),
    vim.DistributedVirtualSwitch: ("name", "parent"),
}
"""Managed object type → the property paths collected for it (and for its subtypes)."""

VIEW_TYPES: list[type] = [vim.VirtualMachine, vim.HostSystem, vim.ComputeResource, vim.Datacenter, vim.Folder]
VIEW_TYPES += [vim.Datastore, vim.Network, vim.DistributedVirtualSwitch]
"""The types the container view lists (subtypes included)."""

REFERENCED_PATHS = frozenset({"name", "parent", "key", "summary", "config.distributedVirtualSwitch"})
"""Properties other objects' records are built from (names, hierarchy, portgroup keys,
opaque network ids): when one of them changes on a non-VM object, dependants are rebuilt."""


def paths_of(obj: object) -> frozenset[str]:
    """Every path collected for ``obj`` (from its type's and its base types' entries)."""
    return frozenset(path for kind, paths in PATHS.items() if isinstance(obj, kind) for path in paths)
