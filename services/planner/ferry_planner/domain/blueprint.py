"""The blueprint of one migrated VM: the :class:`TargetVm` to create and the disks to copy.

Built once, when a migration is created, from the source ``VmRecord``, the plan and its
maps (so a migration does not change under its VMs when the inventory does). Pure.

Choices (no guest conversion runs, so devices are picked for the drivers a guest has):

* disk bus: SCSI and NVMe disks → ``virtio`` (virtio-blk; Linux guests carry the driver,
  Windows needs the virtio drivers installed first); SATA and IDE disks → ``sata``
  (emulated AHCI, which every guest can boot from);
* NIC model: ``vmxnet3`` (and anything unknown) → ``virtio``; ``e1000``/``e1000e`` →
  ``e1000e``; MACs are kept;
* networks: a NIC on a network mapped to ``pod`` gets the pod network (masquerade), to
  ``multus`` the NetworkAttachmentDefinition ``namespace/name`` (bridge); ``ignored``
  drops the NIC;
* storage: the datastore's StorageClass, its volume mode and access mode
  (``ReadWriteOnce`` when the map leaves it empty); plain PVCs, not CDI DataVolumes,
  because Ferry writes the bytes itself;
* EFI firmware keeps secure boot (which needs SMM) and the vTPM; CPU topology and
  memory are copied; ``run`` is whether the source was powered on.
"""

from ferry_planner.domain.inventory_view import SourceView
from ferry_planner.domain.maps import NetworkDestination, NetworkMap, StorageMap
from ferry_planner.domain.plans import Plan
from ferry_shared.inventory import DiskRecord, NicRecord, PowerState, VmRecord
from ferry_shared.migrations import SourceDisk
from ferry_shared.target_vm import DiskBus, NicModel, TargetDisk, TargetNic, TargetVm, VolumeMode

DEFAULT_ACCESS_MODE = "ReadWriteOnce"
_BUSES: dict[str, DiskBus] = {"scsi": "virtio", "nvme": "virtio", "sata": "sata", "ide": "sata"}
_NIC_MODELS: dict[str, NicModel] = {"vmxnet3": "virtio", "e1000": "e1000e", "e1000e": "e1000e"}
_VOLUME_MODES: dict[str, VolumeMode] = {"Filesystem": "Filesystem", "Block": "Block"}


class BlueprintError(ValueError):
    """The VM cannot be described on the target (an unmapped network or datastore, no memory size)."""


def disk_bus(controller: str) -> DiskBus:
    """The KubeVirt disk bus for a source disk's controller type."""
    return _BUSES.get(controller.lower(), "virtio")


def nic_model(adapter: str) -> NicModel:
    """The KubeVirt NIC model for a source adapter type."""
    return _NIC_MODELS.get(adapter.lower(), "virtio")


def _disk(disk: DiskRecord, storage_map: StorageMap, source: SourceView) -> TargetDisk:
    pair = storage_map.pair_for(disk.datastore_id, disk.datastore_name, source.find_datastores)
    if pair is None:
        where = disk.datastore_name or disk.datastore_id
        raise BlueprintError(f"disk '{disk.file_name}' is on datastore '{where}', which StorageMap "
                             f"'{storage_map.name}' does not map")  # fmt: skip
    return TargetDisk(
        key=disk.key,
        source_file=disk.file_name,
        capacity_bytes=disk.capacity_bytes,
        bus=disk_bus(disk.controller),
        storage_class=pair.storage_class,
        volume_mode=_VOLUME_MODES.get(pair.volume_mode, ""),
        access_mode=pair.access_mode or DEFAULT_ACCESS_MODE,
    )


def _nic(nic: NicRecord, network_map: NetworkMap, source: SourceView) -> TargetNic | None:
    pair = network_map.pair_for(nic.network_id, nic.network_name, source.find_networks)
    if pair is None:
        where = nic.network_name or nic.network_id
        raise BlueprintError(f"NIC {nic.mac} is on network '{where}', which NetworkMap "
                             f"'{network_map.name}' does not map")  # fmt: skip
    if pair.destination is NetworkDestination.IGNORED:
        return None
    if pair.destination is NetworkDestination.MULTUS:
        return TargetNic(mac=nic.mac, model=nic_model(nic.adapter), destination="multus", nad=pair.nad)
    return TargetNic(mac=nic.mac, model=nic_model(nic.adapter), destination="pod")


def source_disks(vm: VmRecord) -> tuple[SourceDisk, ...]:
    """The VM's disks as the transfer reads them from the datastore endpoint."""
    return tuple(
        SourceDisk(
            key=disk.key,
            file_name=disk.file_name,
            datacenter=vm.datacenter_name,
            capacity_bytes=disk.capacity_bytes,
            cbt=disk.cbt,
        )
        for disk in vm.disks
    )


def build_blueprint(
    vm: VmRecord,
    *,
    plan: Plan,
    target_name: str,
    network_map: NetworkMap,
    storage_map: StorageMap,
    source: SourceView,
) -> tuple[TargetVm, tuple[SourceDisk, ...]]:
    """The TargetVm for ``vm`` (named ``target_name`` in the plan's namespace) and its disks."""
    if vm.memory_mib < 1:
        raise BlueprintError(f"VM '{vm.name}' reports no memory size; the inventory may not have loaded it fully")
    nics = tuple(nic for record in vm.nics if (nic := _nic(record, network_map, source)) is not None)
    efi = vm.firmware.lower() == "efi"
    blueprint = TargetVm(
        name=target_name,
        namespace=plan.target_namespace,
        source_provider=plan.source_provider,
        source_vm_id=vm.id,
        source_vm_name=vm.name,
        plan=plan.name,
        cpu_sockets=max(vm.cpu_sockets, 1),
        cores_per_socket=max(vm.cores_per_socket, 1),
        memory_mib=vm.memory_mib,
        firmware="efi" if efi else "bios",
        secure_boot=efi and vm.secure_boot,
        vtpm=vm.vtpm,
        run=vm.power_state == PowerState.ON,
        disks=tuple(_disk(disk, storage_map, source) for disk in vm.disks),
        nics=nics,
    )
    return blueprint, source_disks(vm)
