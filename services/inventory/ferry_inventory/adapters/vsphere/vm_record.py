"""Builds a VM's :class:`VmRecord` from its cached properties: identity, firmware and
boot, CPU and memory, devices (see :mod:`.disks`, :mod:`.nics`), snapshots, guest
facts, placement (host, cluster, datacenter) and inventory path.
"""

import ipaddress

from pyVmomi import vim

from ferry_inventory.adapters.vsphere.cache import ObjectCache, ObjectState
from ferry_inventory.adapters.vsphere.disks import disk_records
from ferry_inventory.adapters.vsphere.nics import NetworkLookup, nic_records, passthrough_devices
from ferry_shared.inventory import PowerState, VmRecord

Device = vim.vm.device


def snapshot_names(state: ObjectState) -> tuple[str, ...]:
    """Every snapshot's name, parents before children, in creation order."""
    info = state.get("snapshot", vim.vm.SnapshotInfo)
    names: list[str] = []
    pending = list(reversed(info.rootSnapshotList)) if info is not None else []
    while pending:
        tree = pending.pop()
        names.append(tree.name)
        pending.extend(reversed(tree.childSnapshotList))
    return tuple(names)


def _useful_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (address.is_link_local or address.is_loopback or address.is_unspecified)


def guest_ips(state: ObjectState) -> tuple[str, ...]:
    """The guest's addresses as VMware Tools reports them (link-local ones left out)."""
    found = [address for nic in state.items("guest.net", vim.vm.GuestInfo.NicInfo) for address in nic.ipAddress]
    found.append(state.text("guest.ipAddress"))
    return tuple(dict.fromkeys(address for address in found if _useful_address(address)))


def _placement(state: ObjectState, cache: ObjectCache) -> tuple[str, str, str]:
    """(host id, host name, cluster name) of where the VM runs or is registered."""
    host = cache.get(state.ref_id("runtime.host"))
    if host is None:
        return state.ref_id("runtime.host"), "", ""
    compute = cache.get(host.ref_id("parent"))
    cluster = compute.name if compute is not None and isinstance(compute.ref, vim.ClusterComputeResource) else ""
    return host.id, host.name, cluster


def vm_record(state: ObjectState, cache: ObjectCache, networks: NetworkLookup) -> VmRecord:
    devices = state.items("config.hardware.device", Device.VirtualDevice)
    cbt = state.flag("config.changeTrackingEnabled")
    power = state.text("runtime.powerState") or PowerState.OFF
    cores = max(state.number("config.hardware.numCoresPerSocket"), 1)
    host_id, host_name, cluster_name = _placement(state, cache)
    return VmRecord(
        id=state.id,
        name=state.name,
        path=cache.inventory_path(state),
        instance_uuid=state.text("config.instanceUuid"),
        bios_uuid=state.text("config.uuid"),
        template=state.flag("config.template"),
        power_state=power,
        guest_id=state.text("config.guestId"),
        guest_full_name=state.text("config.guestFullName"),
        firmware=state.text("config.firmware") or "bios",
        secure_boot=state.flag("config.bootOptions.efiSecureBootEnabled"),
        vtpm=any(isinstance(device, Device.VirtualTPM) for device in devices),
        cpu_sockets=max(state.number("config.hardware.numCPU") // cores, 1),
        cores_per_socket=cores,
        memory_mib=state.number("config.hardware.memoryMB"),
        cpu_hot_add=state.flag("config.cpuHotAddEnabled"),
        memory_hot_add=state.flag("config.memoryHotAddEnabled"),
        cbt_enabled=cbt,
        disks=disk_records(devices, cache, cbt=cbt),
        nics=nic_records(devices, networks, powered_on=power == PowerState.ON),
        passthrough_devices=passthrough_devices(devices),
        usb_controllers=sum(
            isinstance(device, (Device.VirtualUSBController, Device.VirtualUSBXHCIController)) for device in devices
        ),
        snapshots=snapshot_names(state),
        guest_hostname=state.text("guest.hostName"),
        guest_ips=guest_ips(state),
        host_id=host_id,
        host_name=host_name,
        cluster_name=cluster_name,
        datacenter_name=cache.datacenter_name(state),
    )
