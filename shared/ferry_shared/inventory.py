"""Inventory records: what the inventory service stores in KV and the planner reads.

One record per object, keyed ``<provider>.<kind>.<id>`` in the ``ferry_inventory``
bucket (see :func:`inventory_key`). Ids are vSphere managed-object ids (``vm-42``) or
Kubernetes ``namespace/name``; characters a KV key may not hold are escaped. Records are tolerant
readers like every message: fields are added with defaults.
"""

from enum import StrEnum
from typing import Literal

import msgspec

SourceKind = Literal["vm", "network", "datastore", "host", "cluster", "datacenter", "folder"]
TargetKind = Literal["namespace", "storageclass", "nad", "targetvm"]


class PowerState(StrEnum):
    ON = "poweredOn"
    OFF = "poweredOff"
    SUSPENDED = "suspended"


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every inventory record has."""

    id: str
    name: str


class DiskRecord(msgspec.Struct, frozen=True, kw_only=True):
    key: int
    label: str = ""
    file_name: str  # "[LocalDS_0] vm1/vm1.vmdk"
    datastore_id: str = ""
    datastore_name: str = ""
    capacity_bytes: int
    thin: bool = False
    sharing: str = "sharingNone"
    disk_mode: str = "persistent"
    rdm: bool = False
    rdm_compatibility: str = ""
    controller: str = "scsi"  # scsi | sata | nvme | ide
    controller_model: str = ""  # lsilogic, pvscsi, ahci, …
    controller_bus: int = 0
    unit_number: int = 0
    cbt: bool = False
    change_id: str = ""


class NicRecord(msgspec.Struct, frozen=True, kw_only=True):
    key: int
    mac: str
    network_id: str = ""
    network_name: str = ""
    adapter: str = ""  # vmxnet3, e1000e, e1000, sriov
    connected: bool = True


class VmRecord(Record, frozen=True, kw_only=True):
    path: str = ""
    instance_uuid: str = ""
    bios_uuid: str = ""
    template: bool = False
    power_state: str = PowerState.OFF
    guest_id: str = ""
    guest_full_name: str = ""
    firmware: str = "bios"  # bios | efi
    secure_boot: bool = False
    vtpm: bool = False
    cpu_sockets: int = 1
    cores_per_socket: int = 1
    memory_mib: int = 0
    cpu_hot_add: bool = False
    memory_hot_add: bool = False
    cbt_enabled: bool = False
    disks: tuple[DiskRecord, ...] = ()
    nics: tuple[NicRecord, ...] = ()
    passthrough_devices: tuple[str, ...] = ()
    usb_controllers: int = 0
    snapshots: tuple[str, ...] = ()
    guest_hostname: str = ""
    guest_ips: tuple[str, ...] = ()
    host_id: str = ""
    host_name: str = ""
    cluster_name: str = ""
    datacenter_name: str = ""

    @property
    def cpu_count(self) -> int:
        return self.cpu_sockets * self.cores_per_socket


class NetworkRecord(Record, frozen=True, kw_only=True):
    kind: str = "standard"  # standard | distributed | opaque
    switch_name: str = ""
    datacenter_name: str = ""


class DatastoreRecord(Record, frozen=True, kw_only=True):
    type: str = ""
    capacity_bytes: int = 0
    free_bytes: int = 0
    datacenter_name: str = ""


class HostRecord(Record, frozen=True, kw_only=True):
    cluster_name: str = ""
    datacenter_name: str = ""
    maintenance_mode: bool = False
    connection_state: str = "connected"


class ClusterRecord(Record, frozen=True, kw_only=True):
    datacenter_name: str = ""


class DatacenterRecord(Record, frozen=True, kw_only=True):
    pass


class FolderRecord(Record, frozen=True, kw_only=True):
    path: str = ""


class NamespaceRecord(Record, frozen=True, kw_only=True):
    pass


class StorageClassRecord(Record, frozen=True, kw_only=True):
    provisioner: str = ""
    is_default: bool = False
    volume_modes: tuple[str, ...] = ()  # from the CDI StorageProfile, when present
    access_modes: tuple[str, ...] = ()


class NadRecord(Record, frozen=True, kw_only=True):
    namespace: str


class TargetVmRecord(Record, frozen=True, kw_only=True):
    namespace: str
    macs: tuple[str, ...] = ()


SOURCE_RECORD_TYPES: dict[str, type[Record]] = {
    "vm": VmRecord,
    "network": NetworkRecord,
    "datastore": DatastoreRecord,
    "host": HostRecord,
    "cluster": ClusterRecord,
    "datacenter": DatacenterRecord,
    "folder": FolderRecord,
}
TARGET_RECORD_TYPES: dict[str, type[Record]] = {
    "namespace": NamespaceRecord,
    "storageclass": StorageClassRecord,
    "nad": NadRecord,
    "targetvm": TargetVmRecord,
}
RECORD_TYPES = {**SOURCE_RECORD_TYPES, **TARGET_RECORD_TYPES}


STATUS_PREFIX = "_status"
CONNECTION_PREFIX = "_connection"


def status_key(provider: str) -> str:
    """Key of a provider's connection status in the inventory bucket."""
    return f"{STATUS_PREFIX}.{provider}"


def connection_key(provider: str) -> str:
    """Key of a provider's stored connection settings in the inventory bucket."""
    return f"{CONNECTION_PREFIX}.{provider}"


_KEY_SAFE = frozenset("-/_.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def kv_safe(identifier: str) -> str:
    """An id made safe for a KV key: characters NATS keys don't allow (and ``=``)
    become ``=XX`` (UTF-8 bytes in hex); :func:`kv_unsafe` reverses it."""
    return "".join(c if c in _KEY_SAFE else "".join(f"={b:02x}" for b in c.encode()) for c in identifier)


def kv_unsafe(key_part: str) -> str:
    """The id that :func:`kv_safe` encoded."""
    if "=" not in key_part:
        return key_part
    out, i = bytearray(), 0
    while i < len(key_part):
        if key_part[i] == "=":
            out.append(int(key_part[i + 1 : i + 3], 16))
            i += 3
        else:
            out += key_part[i].encode()
            i += 1
    return out.decode()


def inventory_key(provider: str, kind: str, identifier: str) -> str:
    """``<provider>.<kind>.<id>``: one record's key in the inventory bucket."""
    return f"{provider}.{kind}.{kv_safe(identifier)}"


def parse_inventory_key(key: str) -> tuple[str, str, str] | None:
    """(provider, kind, id) of a record key; None for status and connection keys."""
    parts = key.split(".", 2)
    if len(parts) != 3 or parts[0].startswith("_") or parts[1] not in RECORD_TYPES:
        return None
    return parts[0], parts[1], kv_unsafe(parts[2])
