"""Blueprints (source VM + plan + maps → TargetVm and disks) and new migrations (pure)."""

import dataclasses
import re
from datetime import UTC, datetime

import msgspec
import pytest

from ferry_planner.domain.blueprint import BlueprintError, build_blueprint, disk_bus, nic_model
from ferry_planner.domain.inventory_view import SourceView, TargetView
from ferry_planner.domain.maps import NetworkDestination, NetworkMap, NetworkPair, StorageMap, StoragePair
from ferry_planner.domain.migrations import MigrationPhase, VmPhase
from ferry_planner.domain.new_migration import MigrationInputs, new_migration, next_name
from ferry_planner.domain.plan_validation import PlanContext, validate_plan
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_shared.dns1123 import to_dns1123_label
from ferry_shared.inventory import (
    DatastoreRecord,
    DiskRecord,
    HostRecord,
    NadRecord,
    NamespaceRecord,
    NetworkRecord,
    NicRecord,
    StorageClassRecord,
    TargetVmRecord,
    VmRecord,
)
from ferry_shared.migrations import SourceDisk
from ferry_shared.plans import Category
from ferry_shared.providers import ProviderSpec
from ferry_shared.target_vm import TargetDisk, TargetNic

T0 = datetime(2025, 1, 1, tzinfo=UTC)
MIB = 2**20

FINANCE = VmRecord(
    id="vm-7",
    name="Finance DB (prod)",
    power_state="poweredOn",
    firmware="efi",
    secure_boot=True,
    vtpm=True,
    cpu_sockets=2,
    cores_per_socket=2,
    memory_mib=4096,
    cbt_enabled=True,
    host_id="host-1",
    host_name="DC0_C0_H0",
    datacenter_name="DC0",
    disks=(
        DiskRecord(key=2000, file_name="[LocalDS_0] fin/fin.vmdk", datastore_id="ds-0", datastore_name="LocalDS_0",
                   capacity_bytes=8 * MIB, controller="scsi", cbt=True),
        DiskRecord(key=2001, file_name="[LocalDS_1] fin/fin_1.vmdk", datastore_id="ds-1", datastore_name="LocalDS_1",
                   capacity_bytes=4 * MIB, controller="sata"),
        DiskRecord(key=2002, file_name="[LocalDS_1] fin/fin_2.vmdk", datastore_id="ds-1", datastore_name="LocalDS_1",
                   capacity_bytes=4 * MIB, controller="nvme"),
    ),
    nics=(
        NicRecord(key=4000, mac="00:50:56:00:00:11", network_id="net-0", network_name="VM Network", adapter="vmxnet3"),
        NicRecord(key=4001, mac="00:50:56:00:00:12", network_id="dvpg-1", network_name="DC0_DVPG0", adapter="e1000"),
        NicRecord(key=4002, mac="00:50:56:00:00:13", network_id="net-9", network_name="Isolated", adapter="e1000e"),
    ),
)  # fmt: skip
SOURCE = SourceView(
    vms=[FINANCE],
    networks=[
        NetworkRecord(id="net-0", name="VM Network"),
        NetworkRecord(id="dvpg-1", name="DC0_DVPG0", kind="distributed"),
        NetworkRecord(id="net-9", name="Isolated"),
    ],
    datastores=[DatastoreRecord(id="ds-0", name="LocalDS_0"), DatastoreRecord(id="ds-1", name="LocalDS_1")],
    hosts=[HostRecord(id="host-1", name="DC0_C0_H0")],
)
NETWORK_MAP = NetworkMap(
    name="net", source_provider="vc", target_provider="kube",
    pairs=(
        NetworkPair(source="VM Network", destination=NetworkDestination.POD),
        NetworkPair(source="dvpg-1", destination=NetworkDestination.MULTUS, nad="apps/vlan-100"),
        NetworkPair(source="Isolated", destination=NetworkDestination.IGNORED),
    ),
)  # fmt: skip
STORAGE_MAP = StorageMap(
    name="sto", source_provider="vc", target_provider="kube",
    pairs=(
        StoragePair(source="LocalDS_0", storage_class="fast", volume_mode="Block", access_mode="ReadWriteMany"),
        StoragePair(source="ds-1", storage_class="standard"),
    ),
)  # fmt: skip
PLAN = Plan(
    name="p1", source_provider="vc", target_provider="kube", network_map="net", storage_map="sto",
    target_namespace="apps", vms=(PlanVm(ref="Finance DB (prod)"),),
)  # fmt: skip


def inputs(plan: Plan = PLAN, source: SourceView = SOURCE) -> MigrationInputs:
    status = validate_plan(
        plan,
        PlanContext(source=source, target=TargetView(checked=False), network_map=NETWORK_MAP,
                    storage_map=STORAGE_MAP, source_ready=True, target_ready=True),
    )  # fmt: skip
    assert status.ready, status
    return MigrationInputs(
        plan=plan, status=status, source=source, network_map=NETWORK_MAP, storage_map=STORAGE_MAP,
        source_provider=ProviderSpec(name="vc", type="vsphere"),
        target_provider=ProviderSpec(name="kube", type="kubernetes"),
    )  # fmt: skip


def test_an_efi_vm_with_three_disks_on_two_datastores_and_mapped_nics() -> None:
    blueprint, disks = build_blueprint(
        FINANCE, plan=PLAN, target_name="finance-db-prod", network_map=NETWORK_MAP, storage_map=STORAGE_MAP,
        source=SOURCE,
    )  # fmt: skip
    assert (blueprint.name, blueprint.namespace, blueprint.plan) == ("finance-db-prod", "apps", "p1")
    assert (blueprint.source_provider, blueprint.source_vm_id, blueprint.source_vm_name) == (
        "vc", "vm-7", "Finance DB (prod)",
    )  # fmt: skip
    assert (blueprint.firmware, blueprint.secure_boot, blueprint.vtpm) == ("efi", True, True)
    assert (blueprint.cpu_sockets, blueprint.cores_per_socket, blueprint.memory_mib, blueprint.run) == (
        2,
        2,
        4096,
        True,
    )
    assert blueprint.disks == (
        TargetDisk(key=2000, source_file="[LocalDS_0] fin/fin.vmdk", capacity_bytes=8 * MIB, bus="virtio",
                   storage_class="fast", volume_mode="Block", access_mode="ReadWriteMany"),
        TargetDisk(key=2001, source_file="[LocalDS_1] fin/fin_1.vmdk", capacity_bytes=4 * MIB, bus="sata",
                   storage_class="standard", volume_mode="", access_mode="ReadWriteOnce"),
        TargetDisk(key=2002, source_file="[LocalDS_1] fin/fin_2.vmdk", capacity_bytes=4 * MIB, bus="virtio",
                   storage_class="standard", volume_mode="", access_mode="ReadWriteOnce"),
    )  # fmt: skip
    assert blueprint.nics == (
        TargetNic(mac="00:50:56:00:00:11", model="virtio", destination="pod"),
        TargetNic(mac="00:50:56:00:00:12", model="e1000e", destination="multus", nad="apps/vlan-100"),
    ), "the NIC on the ignored network is dropped"
    assert disks == (
        SourceDisk(key=2000, file_name="[LocalDS_0] fin/fin.vmdk", datacenter="DC0", capacity_bytes=8 * MIB, cbt=True),
        SourceDisk(key=2001, file_name="[LocalDS_1] fin/fin_1.vmdk", datacenter="DC0", capacity_bytes=4 * MIB),
        SourceDisk(key=2002, file_name="[LocalDS_1] fin/fin_2.vmdk", datacenter="DC0", capacity_bytes=4 * MIB),
    )


def test_bios_vm_that_is_off_and_device_mappings() -> None:
    plain = msgspec.structs.replace(FINANCE, firmware="bios", secure_boot=True, vtpm=False, power_state="poweredOff")
    blueprint, _ = build_blueprint(
        plain, plan=PLAN, target_name="x", network_map=NETWORK_MAP, storage_map=STORAGE_MAP, source=SOURCE
    )
    assert (blueprint.firmware, blueprint.secure_boot, blueprint.vtpm, blueprint.run) == ("bios", False, False, False)
    assert [disk_bus(c) for c in ("scsi", "nvme", "sata", "ide", "other")] == [
        "virtio",
        "virtio",
        "sata",
        "sata",
        "virtio",
    ]
    assert [nic_model(a) for a in ("vmxnet3", "e1000", "e1000e", "sriov")] == ["virtio", "e1000e", "e1000e", "virtio"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"memory_mib": 0}, "reports no memory size"),
        ({"nics": (NicRecord(key=1, mac="aa:bb:cc:00:00:01", network_id="net-x", network_name="Lab"),)},
         "NIC aa:bb:cc:00:00:01 is on network 'Lab', which NetworkMap 'net' does not map"),
        ({"disks": (DiskRecord(key=1, file_name="[Other] a.vmdk", datastore_name="Other", capacity_bytes=1),)},
         "disk '[Other] a.vmdk' is on datastore 'Other', which StorageMap 'sto' does not map"),
    ],
)  # fmt: skip
def test_what_cannot_be_described_is_said(change: dict[str, object], message: str) -> None:
    broken = msgspec.structs.replace(FINANCE, **change)
    with pytest.raises(BlueprintError, match=re.escape(message)):
        build_blueprint(
            broken, plan=PLAN, target_name="x", network_map=NETWORK_MAP, storage_map=STORAGE_MAP, source=SOURCE
        )


def test_a_new_migration_uses_the_sanitized_target_name_and_queues_the_vm() -> None:
    migration = new_migration("p1-1", inputs(), earlier=[], now=T0)
    [vm] = migration.vms
    assert vm.target_name.startswith("finance-db-prod-"), "the DNS-1123 name validation computed"
    assert vm.blueprint is not None and vm.blueprint.name == vm.target_name
    assert (vm.phase, vm.host, vm.host_key, vm.source_power_state) == (
        VmPhase.QUEUED, "DC0_C0_H0", "vc/host-1", "poweredOn",
    )  # fmt: skip
    assert [(d.key, d.bytes_total, d.bytes_done) for d in vm.disks] == [(2000, 8 * MIB, 0), (2001, 4 * MIB, 0),
                                                                      (2002, 4 * MIB, 0)]  # fmt: skip
    assert migration.phase is MigrationPhase.RUNNING and migration.completed_at is None


def test_a_rerun_skips_vms_completed_earlier_and_retries_the_rest() -> None:
    other = msgspec.structs.replace(FINANCE, id="vm-8", name="web-01", nics=(), disks=())
    source = SourceView(
        vms=[FINANCE, other], networks=SOURCE.networks, datastores=SOURCE.datastores, hosts=SOURCE.hosts
    )
    plan = msgspec.structs.replace(PLAN, vms=(PlanVm(ref="Finance DB (prod)"), PlanVm(ref="web-01")))
    first = new_migration("p1-1", inputs(plan, source), earlier=[], now=T0)
    done = msgspec.structs.replace(first.vms[0], phase=VmPhase.COMPLETED)
    failed = msgspec.structs.replace(first.vms[1], phase=VmPhase.FAILED)
    first = msgspec.structs.replace(first, vms=(done, failed))
    second = new_migration("p1-2", inputs(plan, source), earlier=[first], now=T0)
    assert [(vm.vm_id, vm.phase, vm.reason) for vm in second.vms] == [
        ("vm-7", VmPhase.SKIPPED, "already migrated by migration p1-1"),
        ("vm-8", VmPhase.QUEUED, ""),
    ]
    everything = msgspec.structs.replace(first, vms=(done, msgspec.structs.replace(failed, phase=VmPhase.COMPLETED)))
    third = new_migration("p1-3", inputs(plan, source), earlier=[first, everything], now=T0)
    assert third.phase is MigrationPhase.SUCCEEDED and third.completed_at == T0
    assert next_name("p1", ["p1-1", "p1-2", "p1-3"], runs_of_plan=2) == "p1-4"


def test_validation_does_not_count_a_vm_the_plan_already_migrated_as_in_the_way() -> None:
    target = TargetView(
        namespaces=[NamespaceRecord(id="apps", name="apps")],
        storage_classes=[StorageClassRecord(id=name, name=name) for name in ("fast", "standard")],
        nads=[NadRecord(id="apps/vlan-100", name="vlan-100", namespace="apps")],
        vms=[TargetVmRecord(id="apps/x", name=to_dns1123_label(FINANCE.name), namespace="apps",
                            macs=("00:50:56:00:00:11",))],
    )  # fmt: skip
    ctx = PlanContext(source=SOURCE, target=target, network_map=NETWORK_MAP, storage_map=STORAGE_MAP,
                      source_ready=True, target_ready=True)  # fmt: skip
    blocked = validate_plan(PLAN, ctx)
    assert not blocked.ready
    assert {c.id for c in blocked.vms[0].concerns} >= {"vm.target.exists", "vm.target.mac_conflict"}
    migrated = validate_plan(PLAN, dataclasses.replace(ctx, migrated={"vm-7": "p1-1"}))
    assert migrated.ready
    [note] = [c for c in migrated.vms[0].concerns if c.id == "vm.migrated"]
    assert (note.category, note.assessment) == (
        Category.INFORMATION, "migration p1-1 migrated this VM; running the plan again skips it",
    )  # fmt: skip
