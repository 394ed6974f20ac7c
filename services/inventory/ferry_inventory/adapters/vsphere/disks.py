"""A VM's virtual disks as :class:`DiskRecord`: backing file, datastore, provisioning,
sharing, mode, RDM, change id, and the controller each disk hangs on.

Called by :mod:`.vm_record` with the VM's ``config.hardware.device`` list; datastore
names come from the cache.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pyVmomi import vim

from ferry_inventory.adapters.vsphere.cache import ObjectCache, moid
from ferry_shared.inventory import DiskRecord

Device = vim.vm.device

CONTROLLER_MODELS: tuple[tuple[type, str, str], ...] = (
    (Device.ParaVirtualSCSIController, "scsi", "pvscsi"),
    (Device.VirtualLsiLogicSASController, "scsi", "lsilogic-sas"),
    (Device.VirtualLsiLogicController, "scsi", "lsilogic"),
    (Device.VirtualBusLogicController, "scsi", "buslogic"),
    (Device.VirtualSCSIController, "scsi", ""),
    (Device.VirtualAHCIController, "sata", "ahci"),
    (Device.VirtualSATAController, "sata", ""),
    (Device.VirtualNVMEController, "nvme", "nvme"),
    (Device.VirtualIDEController, "ide", "ide"),
)
"""Controller class → (bus kind, model); subclasses before their base classes."""

_DATASTORE_IN_PATH = re.compile(r"^\[(?P<name>[^\]]+)\]")


@dataclass(frozen=True)
class Controller:
    kind: str
    model: str
    bus: int


def controllers(devices: Sequence[Device.VirtualDevice]) -> dict[int, Controller]:
    """Disk controllers by device key."""
    found = {}
    for device in devices:
        if not isinstance(device, Device.VirtualController):
            continue
        for cls, kind, model in CONTROLLER_MODELS:
            if isinstance(device, cls):
                found[device.key] = Controller(kind, model, device.busNumber)
                break
    return found


def _datastore(backing: Device.VirtualDevice.FileBackingInfo, cache: ObjectCache) -> tuple[str, str]:
    """(id, name) of the datastore holding a disk's backing file."""
    datastore_id = moid(backing.datastore) if backing.datastore is not None else ""
    name = cache.name(datastore_id) if datastore_id else ""
    if not name and (match := _DATASTORE_IN_PATH.match(backing.fileName or "")):
        name = match.group("name")
    return datastore_id, name


def disk_record(
    disk: Device.VirtualDisk, controller: Controller | None, cache: ObjectCache, *, cbt: bool
) -> DiskRecord:
    """One disk; ``cbt`` says whether the VM has change tracking enabled."""
    backing = disk.backing
    file_name, datastore_id, datastore_name = "", "", ""
    if isinstance(backing, Device.VirtualDevice.FileBackingInfo):
        file_name = backing.fileName or ""
        datastore_id, datastore_name = _datastore(backing, cache)
    thin, sharing, mode, change_id = False, "", "", ""
    rdm, compatibility = False, ""
    if isinstance(backing, Device.VirtualDisk.FlatVer2BackingInfo):
        thin, sharing, mode = bool(backing.thinProvisioned), backing.sharing or "", backing.diskMode
        change_id = backing.changeId or ""
    elif isinstance(backing, Device.VirtualDisk.RawDiskMappingVer1BackingInfo):
        rdm, compatibility = True, backing.compatibilityMode or ""
        sharing, mode, change_id = backing.sharing or "", backing.diskMode or "", backing.changeId or ""
    elif isinstance(backing, Device.VirtualDisk.SeSparseBackingInfo):
        thin, mode, change_id = True, backing.diskMode, backing.changeId or ""
    elif isinstance(backing, (Device.VirtualDisk.SparseVer2BackingInfo, Device.VirtualDisk.FlatVer1BackingInfo)):
        mode = backing.diskMode
    capacity = disk.capacityInBytes or disk.capacityInKB * 1024
    physical_rdm = rdm and compatibility == "physicalMode"
    return DiskRecord(
        key=disk.key,
        label=disk.deviceInfo.label if disk.deviceInfo is not None else "",
        file_name=file_name,
        datastore_id=datastore_id,
        datastore_name=datastore_name,
        capacity_bytes=int(capacity),
        thin=thin,
        sharing=sharing or "sharingNone",
        disk_mode=mode or "persistent",
        rdm=rdm,
        rdm_compatibility=compatibility,
        controller=controller.kind if controller else "",
        controller_model=controller.model if controller else "",
        controller_bus=controller.bus if controller else 0,
        unit_number=disk.unitNumber or 0,
        cbt=cbt and not physical_rdm,
        change_id=change_id,
    )


def disk_records(devices: Sequence[Device.VirtualDevice], cache: ObjectCache, *, cbt: bool) -> tuple[DiskRecord, ...]:
    by_key = controllers(devices)
    return tuple(
        disk_record(device, by_key.get(device.controllerKey or -1), cache, cbt=cbt)
        for device in devices
        if isinstance(device, Device.VirtualDisk)
    )
