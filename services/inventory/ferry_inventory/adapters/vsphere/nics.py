"""A VM's network adapters as :class:`NicRecord` (model, MAC, network, connected), and the
names of its passthrough devices (PCI DirectPath, vGPU, SR-IOV functions).

A NIC's network is found from its backing: a standard portgroup names the Network; a
distributed port names its portgroup by key; an NSX segment by opaque network id. The
lookups are built once per rebuild by :class:`NetworkLookup`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from pyVmomi import vim

from ferry_inventory.adapters.vsphere.cache import ObjectCache, moid
from ferry_shared.inventory import NicRecord

Device = vim.vm.device
Card = Device.VirtualEthernetCard

ADAPTER_MODELS: tuple[tuple[type, str], ...] = (
    (Device.VirtualSriovEthernetCard, "sriov"),
    (Device.VirtualVmxnet3, "vmxnet3"),
    (Device.VirtualVmxnet2, "vmxnet2"),
    (Device.VirtualVmxnet, "vmxnet"),
    (Device.VirtualE1000e, "e1000e"),
    (Device.VirtualE1000, "e1000"),
    (Device.VirtualPCNet32, "pcnet32"),
)
"""Adapter class → model name; subclasses before their base classes."""


@dataclass(frozen=True)
class NetworkLookup:
    """Indexes of the cache that NIC backings refer through."""

    cache: ObjectCache
    portgroups: dict[str, str]  # distributed portgroup key → id
    opaque: dict[str, str]  # opaque network id → id

    @classmethod
    def of(cls, cache: ObjectCache) -> "NetworkLookup":
        return cls(cache, cache.portgroup_by_key(), cache.opaque_network_by_id())

    def network_of(self, backing: Device.VirtualDevice.BackingInfo | None) -> tuple[str, str]:
        """(id, name) of the network a NIC backing attaches to; ids may be empty when unknown."""
        if isinstance(backing, Card.NetworkBackingInfo):
            network_id = moid(backing.network) if backing.network is not None else ""
            return network_id, self.cache.name(network_id) or backing.deviceName or ""
        if isinstance(backing, Card.DistributedVirtualPortBackingInfo):
            key = backing.port.portgroupKey or ""
            network_id = self.portgroups.get(key, "")
            return network_id, self.cache.name(network_id)
        if isinstance(backing, Card.OpaqueNetworkBackingInfo):
            network_id = self.opaque.get(backing.opaqueNetworkId, "")
            return network_id, self.cache.name(network_id)
        return "", ""


def adapter_model(card: Card) -> str:
    for cls, name in ADAPTER_MODELS:
        if isinstance(card, cls):
            return name
    return type(card).__name__.removeprefix("vim.vm.device.").lower()


def nic_records(
    devices: Sequence[Device.VirtualDevice], networks: NetworkLookup, *, powered_on: bool
) -> tuple[NicRecord, ...]:
    """The VM's NICs. ``connected`` is the live state of a running VM and the
    connect-at-power-on setting of one that is off (vSphere reports every NIC of a
    stopped VM as disconnected)."""
    nics = []
    for device in devices:
        if not isinstance(device, Card):
            continue
        network_id, network_name = networks.network_of(device.backing)
        link = device.connectable
        connected = link is not None and (link.connected if powered_on else link.startConnected)
        nics.append(
            NicRecord(
                key=device.key,
                mac=device.macAddress or "",
                network_id=network_id,
                network_name=network_name,
                adapter=adapter_model(device),
                connected=connected,
            )
        )
    return tuple(nics)


def _pci_name(backing: Device.VirtualDevice.BackingInfo | None, label: str) -> str:
    if isinstance(backing, Device.VirtualPCIPassthrough.VmiopBackingInfo):
        return f"vGPU {backing.vgpu or 'unknown profile'}"
    if isinstance(backing, Device.VirtualPCIPassthrough.DeviceBackingInfo):
        return f"{backing.deviceName or 'PCI device'} ({backing.id})" if backing.id else backing.deviceName
    if isinstance(backing, Device.VirtualPCIPassthrough.DynamicBackingInfo):
        return f"dynamic DirectPath {backing.customLabel or backing.deviceName or label}"
    return label or "PCI passthrough device"


def passthrough_devices(devices: Sequence[Device.VirtualDevice]) -> tuple[str, ...]:
    """Names of the devices that tie the VM to physical hardware."""
    names = []
    for device in devices:
        label = device.deviceInfo.label if device.deviceInfo is not None else ""
        if isinstance(device, Device.VirtualPCIPassthrough):
            names.append(_pci_name(device.backing, label))
        elif isinstance(device, Device.VirtualSriovEthernetCard):
            function = device.sriovBacking.physicalFunctionBacking if device.sriovBacking else None
            where = f" on {function.deviceName or 'physical function'} ({function.id})" if function else ""
            names.append(f"SR-IOV {label or 'network adapter'}{where}")
    return tuple(names)
