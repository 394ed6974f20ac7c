"""The blueprint of one migrated VM: the VirtualMachine to create, with its disks and NICs.

The planner builds it from the source ``VmRecord`` and the plan's maps and sends it in
migration commands; kubevirt-writer turns it into Kubernetes object bodies (or local
manifests). Plain frozen values, no I/O.
"""

from typing import Literal

import msgspec

DiskBus = Literal["virtio", "sata", "scsi"]
VolumeMode = Literal["Filesystem", "Block", ""]  # "" lets the StorageClass (or CDI) decide
NicModel = Literal["virtio", "e1000e"]
NicDestination = Literal["pod", "multus"]
Firmware = Literal["bios", "efi"]


class TargetDisk(msgspec.Struct, frozen=True, kw_only=True):
    """One source disk and the volume it becomes."""

    key: int  # the source disk's device key
    source_file: str  # "[LocalDS_0] vm1/vm1.vmdk"
    capacity_bytes: int
    bus: DiskBus = "virtio"
    storage_class: str = ""
    volume_mode: VolumeMode = ""
    access_mode: str = "ReadWriteOnce"
    use_datavolume: bool = False


class TargetNic(msgspec.Struct, frozen=True, kw_only=True):
    """One source NIC that is kept (NICs mapped to "ignored" are simply absent)."""

    mac: str
    model: NicModel = "virtio"
    destination: NicDestination = "pod"
    nad: str = ""  # "namespace/name", for destination "multus"


class TargetVm(msgspec.Struct, frozen=True, kw_only=True):
    """The VirtualMachine to create, in source order of disks and NICs."""

    name: str  # DNS-1123 label
    namespace: str
    source_provider: str
    source_vm_id: str
    source_vm_name: str
    plan: str
    cpu_sockets: int = 1
    cores_per_socket: int = 1
    memory_mib: int
    firmware: Firmware = "bios"
    secure_boot: bool = False
    vtpm: bool = False
    run: bool = False  # the source was powered on
    disks: tuple[TargetDisk, ...] = ()
    nics: tuple[TargetNic, ...] = ()
