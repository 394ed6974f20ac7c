"""The per-VM checks of plan validation, one function per aspect of a VM."""

from ferry_planner.domain.inventory_reads import SourceLookups, TargetLookups
from ferry_planner.domain.maps import NetworkDestination, NetworkMap, StorageMap
from ferry_shared.dns1123 import is_dns1123_label, to_dns1123_label
from ferry_shared.inventory import PowerState, VmRecord
from ferry_shared.plans import Category, Concern


def _concern(id_: str, category: Category, label: str, assessment: str) -> Concern:
    return Concern(id=id_, category=category, label=label, assessment=assessment)


def target_name(vm: VmRecord, requested: str) -> tuple[str, list[Concern]]:
    """The VM's name on the target, and a concern when it had to change."""
    if requested:
        if is_dns1123_label(requested):
            return requested, []
        return requested, [
            _concern(
                "vm.target_name.invalid",
                Category.CRITICAL,
                "Target name is not DNS-1123",
                f"'{requested}' is not a valid Kubernetes name (lower-case letters, digits and '-', "
                "at most 63 characters); choose another",
            )
        ]
    sanitized = to_dns1123_label(vm.name)
    if sanitized == vm.name:
        return sanitized, []
    if not is_dns1123_label(sanitized):  # to_dns1123_label makes a label; never create anything from one that is not
        return sanitized, [
            _concern(
                "vm.target_name.invalid",
                Category.CRITICAL,
                "Target name is not DNS-1123",
                f"no valid Kubernetes name could be made from '{vm.name}'; give the VM a target name",
            )
        ]
    return sanitized, [
        _concern(
            "vm.name.renamed",
            Category.WARNING,
            "VM will be renamed",
            f"'{vm.name}' is not a valid Kubernetes name; the VM will be created as '{sanitized}'",
        )
    ]


def target_namespace(vm: VmRecord, target_name: str, namespace: str) -> list[Concern]:
    """The plan's namespace can hold the VM (on every target type: it names a directory too)."""
    if is_dns1123_label(namespace):
        return []
    return [
        _concern(
            "vm.target_namespace.invalid",
            Category.CRITICAL,
            "Target namespace is not DNS-1123",
            f"VM '{vm.name}' would be created as '{target_name}' in namespace '{namespace}', which is not a valid "
            "Kubernetes name (lower-case letters, digits and '-', at most 63 characters); choose another",
        )
    ]


def networks(vm: VmRecord, network_map: NetworkMap, source: SourceLookups) -> list[Concern]:
    """Every NIC's network is mapped, and at most one NIC lands on the pod network."""
    concerns: list[Concern] = []
    on_pod = 0
    for nic in vm.nics:
        pair = network_map.pair_for(nic.network_id, nic.network_name, source.find_networks)
        if pair is None:
            concerns.append(
                _concern(
                    "vm.network.unmapped",
                    Category.CRITICAL,
                    "Network not mapped",
                    f"NIC {nic.mac} is on network '{nic.network_name or nic.network_id}', which "
                    f"NetworkMap '{network_map.name}' does not map; add a pair for it",
                )
            )
        elif pair.destination is NetworkDestination.POD:
            on_pod += 1
    if on_pod > 1:
        concerns.append(
            _concern(
                "vm.network.multiple_pod",
                Category.CRITICAL,
                "More than one NIC on the pod network",
                f"{on_pod} NICs map to the pod network; a VM can have only one. Map the others to "
                "Multus networks or 'ignored'",
            )
        )
    return concerns


def storage(vm: VmRecord, storage_map: StorageMap, source: SourceLookups) -> list[Concern]:
    """Every disk's datastore is mapped."""
    concerns: list[Concern] = []
    for disk in vm.disks:
        if storage_map.pair_for(disk.datastore_id, disk.datastore_name, source.find_datastores) is None:
            concerns.append(
                _concern(
                    "vm.storage.unmapped",
                    Category.CRITICAL,
                    "Datastore not mapped",
                    f"disk '{disk.file_name}' is on datastore '{disk.datastore_name or disk.datastore_id}', "
                    f"which StorageMap '{storage_map.name}' does not map; add a pair for it",
                )
            )
    return concerns


def target_conflicts(vm: VmRecord, name: str, namespace: str, target: TargetLookups) -> list[Concern]:
    """No VM of the same name in the namespace, and none with one of this VM's MACs."""
    concerns: list[Concern] = []
    if target.vm_exists(namespace, name):
        concerns.append(
            _concern(
                "vm.target.exists",
                Category.CRITICAL,
                "VM already exists on the target",
                f"a VirtualMachine '{namespace}/{name}' already exists; delete it or set another target name",
            )
        )
    for nic in vm.nics:
        owner = target.vm_with_mac(nic.mac)
        if owner is not None:
            concerns.append(
                _concern(
                    "vm.target.mac_conflict",
                    Category.CRITICAL,
                    "MAC address already in use on the target",
                    f"MAC {nic.mac} is already used by VirtualMachine '{owner.namespace}/{owner.name}'",
                )
            )
    return concerns


def already_migrated(migration: str) -> Concern:
    """A VM an earlier run of the plan completed: what is on the target is its result."""
    return _concern(
        "vm.migrated",
        Category.INFORMATION,
        "Already migrated",
        f"migration {migration} migrated this VM; running the plan again skips it",
    )


def disks(vm: VmRecord) -> list[Concern]:
    """Disk shapes that cannot be copied, or need a warning."""
    concerns: list[Concern] = []
    if not vm.disks:
        concerns.append(_concern("vm.disks.none", Category.WARNING, "VM has no disks", "only the definition moves"))
    for disk in vm.disks:
        if disk.capacity_bytes <= 0:
            concerns.append(
                _concern(
                    "vm.disk.invalid_capacity",
                    Category.CRITICAL,
                    "Invalid disk capacity",
                    f"disk '{disk.file_name}' reports a capacity of {disk.capacity_bytes} bytes",
                )
            )
        if disk.rdm:
            concerns.append(
                _concern(
                    "vm.disk.rdm",
                    Category.CRITICAL,
                    "Raw device mapping",
                    f"disk '{disk.file_name}' is an RDM ({disk.rdm_compatibility or 'unknown'} mode); "
                    "its LUN cannot be copied through the datastore. Convert it to a virtual disk first",
                )
            )
        if disk.sharing == "sharingMultiWriter":
            concerns.append(
                _concern(
                    "vm.disk.shared",
                    Category.WARNING,
                    "Shared disk",
                    f"disk '{disk.file_name}' is multi-writer; other VMs sharing it must be stopped during the copy",
                )
            )
        if disk.disk_mode.startswith("independent"):
            concerns.append(
                _concern(
                    "vm.disk.independent",
                    Category.WARNING,
                    "Independent disk",
                    f"disk '{disk.file_name}' is {disk.disk_mode}; snapshots (warm migration) skip it",
                )
            )
    return concerns


def hardware(vm: VmRecord, source: SourceLookups) -> list[Concern]:
    """Devices and settings KubeVirt treats differently, and source-side warnings."""
    concerns: list[Concern] = []
    if vm.template:
        concerns.append(_concern("vm.template", Category.CRITICAL, "VM is a template", "templates cannot be migrated"))
    if vm.passthrough_devices:
        concerns.append(
            _concern(
                "vm.passthrough",
                Category.WARNING,
                "Passthrough devices",
                f"PCI passthrough/SR-IOV devices ({', '.join(vm.passthrough_devices)}) are not migrated",
            )
        )
    if vm.usb_controllers:
        concerns.append(_concern("vm.usb", Category.INFORMATION, "USB controller", "USB devices are not migrated"))
    if vm.vtpm:
        concerns.append(
            _concern(
                "vm.vtpm",
                Category.INFORMATION,
                "vTPM",
                "the VM gets a persistent TPM; its contents start empty",
            )
        )
    if vm.snapshots:
        concerns.append(
            _concern(
                "vm.snapshots",
                Category.WARNING,
                "VM has snapshots",
                f"{len(vm.snapshots)} snapshot(s) exist; only the current state is migrated",
            )
        )
    if vm.power_state == PowerState.ON:
        concerns.append(
            _concern("vm.power", Category.INFORMATION, "VM is running", "a cold migration powers it off first")
        )
    if not vm.cbt_enabled:
        concerns.append(
            _concern(
                "vm.cbt",
                Category.INFORMATION,
                "Changed Block Tracking is off",
                "every block is read (zero blocks are still skipped); enable CBT for faster copies",
            )
        )
    host = source.host(vm.host_id)
    if host is not None and host.maintenance_mode:
        concerns.append(
            _concern(
                "vm.host.maintenance",
                Category.WARNING,
                "Host in maintenance mode",
                f"host '{host.name}' is in maintenance mode",
            )
        )
    return concerns
