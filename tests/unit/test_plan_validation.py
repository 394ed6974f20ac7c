"""Plan and map validation (pure domain, no I/O)."""

import pytest

from ferry_planner.domain.inventory_view import SourceView, TargetView
from ferry_planner.domain.map_validation import validate_network_map, validate_storage_map
from ferry_planner.domain.maps import NetworkDestination, NetworkMap, NetworkPair, StorageMap, StoragePair
from ferry_planner.domain.plan_validation import PlanContext, validate_plan
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_shared.dns1123 import is_dns1123_label, to_dns1123_label
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
from ferry_shared.plans import Category


def vm(name: str, vm_id: str, *, nics: tuple[tuple[str, str], ...] = (("net-1", "aa:00:00:00:00:01"),),
       disks: tuple[tuple[str, int], ...] = (("ds-1", 2**30),), **extra: object) -> VmRecord:  # fmt: skip
    return VmRecord(
        id=vm_id,
        name=name,
        cbt_enabled=True,
        host_id="host-1",
        nics=tuple(NicRecord(key=4000 + i, mac=mac, network_id=net) for i, (net, mac) in enumerate(nics)),
        disks=tuple(
            DiskRecord(key=2000 + i, file_name=f"[ds] {name}/{name}_{i}.vmdk", datastore_id=ds, capacity_bytes=size)
            for i, (ds, size) in enumerate(disks)
        ),
        **extra,  # type: ignore[arg-type]
    )


SOURCE = SourceView(
    vms=[
        vm("web-01", "vm-1"),
        vm("Bad Name_01", "vm-2"),
        vm("two-pods", "vm-3", nics=(("net-1", "aa:00:00:00:00:03"), ("net-1", "aa:00:00:00:00:04"))),
        vm("unmapped", "vm-4", nics=(("net-9", "aa:00:00:00:00:05"),), disks=(("ds-9", 2**30),)),
        vm("taken", "vm-5", nics=(("net-1", "aa:00:00:00:00:99"),)),
        vm("zero-disk", "vm-6", disks=(("ds-1", 0),)),
        vm("rdm", "vm-7", disks=(("ds-1", 2**30),)),
        vm("dup", "vm-8"),
        vm("dup", "vm-9"),
    ],
    networks=[NetworkRecord(id="net-1", name="VM Network"), NetworkRecord(id="net-2", name="DVPG")],
    datastores=[DatastoreRecord(id="ds-1", name="LocalDS_0")],
    hosts=[HostRecord(id="host-1", name="esx-1")],
)
TARGET = TargetView(
    namespaces=[NamespaceRecord(id="ferry", name="ferry")],
    storage_classes=[StorageClassRecord(id="standard", name="standard")],
    nads=[NadRecord(id="ferry/vlan", name="vlan", namespace="ferry")],
    vms=[TargetVmRecord(id="ferry/taken", name="taken", namespace="ferry", macs=("AA:00:00:00:00:99",))],
)
NETWORK_MAP = NetworkMap(
    name="net", source_provider="vc", target_provider="kube",
    pairs=(NetworkPair(source="VM Network", destination=NetworkDestination.POD),),
)  # fmt: skip
STORAGE_MAP = StorageMap(
    name="sto", source_provider="vc", target_provider="kube",
    pairs=(StoragePair(source="LocalDS_0", storage_class="standard"),),
)  # fmt: skip


def plan(*refs: str, namespace: str = "ferry") -> Plan:
    return Plan(
        name="p", source_provider="vc", target_provider="kube", network_map="net", storage_map="sto",
        target_namespace=namespace, vms=tuple(PlanVm(ref=r) for r in refs),
    )  # fmt: skip


def context(**overrides: object) -> PlanContext:
    values: dict[str, object] = {
        "source": SOURCE, "target": TARGET, "network_map": NETWORK_MAP, "storage_map": STORAGE_MAP,
        "source_ready": True, "target_ready": True,
    }  # fmt: skip
    values.update(overrides)
    return PlanContext(**values)  # type: ignore[arg-type]


def concern_ids(status: object, ref: str) -> set[str]:
    (found,) = [v for v in status.vms if v.ref == ref]  # type: ignore[attr-defined]
    return {c.id for c in found.concerns}


def test_a_clean_vm_makes_a_ready_plan() -> None:
    status = validate_plan(plan("web-01"), context())
    assert status.ready
    assert status.vms[0].id == "vm-1"
    assert status.vms[0].target_name == "web-01"


def test_vm_can_be_named_by_id() -> None:
    assert validate_plan(plan("vm-1"), context()).vms[0].name == "web-01"


@pytest.mark.parametrize(
    ("ref", "concern"),
    [
        ("ghost", "vm.not_found"),
        ("two-pods", "vm.network.multiple_pod"),
        ("unmapped", "vm.network.unmapped"),
        ("unmapped", "vm.storage.unmapped"),
        ("taken", "vm.target.exists"),
        ("taken", "vm.target.mac_conflict"),
        ("zero-disk", "vm.disk.invalid_capacity"),
        ("dup", "vm.ambiguous"),
    ],
)
def test_critical_concerns_block_the_plan(ref: str, concern: str) -> None:
    status = validate_plan(plan(ref), context())
    assert concern in concern_ids(status, ref)
    assert not status.ready


def test_non_dns1123_name_is_sanitized_and_reported() -> None:
    status = validate_plan(plan("Bad Name_01"), context())
    (result,) = status.vms
    assert is_dns1123_label(result.target_name)
    assert result.target_name.startswith("bad-name-01-")
    assert "vm.name.renamed" in concern_ids(status, "Bad Name_01")
    assert status.ready, "a rename is a warning, not a blocker"


def test_duplicate_vms_are_a_plan_condition() -> None:
    status = validate_plan(plan("web-01", "vm-1"), context())
    assert "DuplicateVM" in {c.type for c in status.conditions}
    assert all("vm.duplicate" in {c.id for c in v.concerns} for v in status.vms)
    assert not status.ready


@pytest.mark.parametrize(
    ("overrides", "condition"),
    [
        ({"source": None}, "SourceProviderNotFound"),
        ({"target_ready": False}, "TargetProviderNotReady"),
        ({"network_map": None}, "NetworkMapNotFound"),
        ({"storage_map": None}, "StorageMapNotFound"),
    ],
)
def test_plan_conditions(overrides: dict[str, object], condition: str) -> None:
    status = validate_plan(plan("web-01"), context(**overrides))
    assert condition in {c.type for c in status.conditions}
    assert not status.ready


def test_missing_namespace_blocks_but_a_local_target_has_no_namespaces() -> None:
    assert "TargetNamespaceNotFound" in {
        c.type for c in validate_plan(plan("web-01", namespace="x"), context()).conditions
    }
    assert validate_plan(plan("web-01", namespace="x"), context(target=TargetView(checked=False))).ready


def test_rdm_and_shared_disks() -> None:
    rdm_vm = VmRecord(id="vm-r", name="r", disks=(DiskRecord(key=1, file_name="f", datastore_id="ds-1",
                      capacity_bytes=1, rdm=True, sharing="sharingMultiWriter"),))  # fmt: skip
    status = validate_plan(plan("r"), context(source=SourceView(vms=[rdm_vm], datastores=SOURCE.datastores)))
    ids = concern_ids(status, "r")
    assert {"vm.disk.rdm", "vm.disk.shared"} <= ids
    assert not status.ready


def test_map_references_must_exist() -> None:
    bad_net = NetworkMap(name="n", source_provider="vc", target_provider="kube", pairs=(
        NetworkPair(source="nope", destination=NetworkDestination.POD),
        NetworkPair(source="DVPG", destination=NetworkDestination.MULTUS, nad="ferry/missing"),
        NetworkPair(source="net-1", destination=NetworkDestination.MULTUS, nad="ferry/vlan"),
    ))  # fmt: skip
    status = validate_network_map(bad_net, SOURCE, TARGET)
    assert [c.type for c in status.conditions] == ["SourceNetworkNotFound", "NetworkAttachmentNotFound"]
    assert not status.ready
    bad_sto = StorageMap(name="s", source_provider="vc", target_provider="kube",
                         pairs=(StoragePair(source="LocalDS_0", storage_class="gold"),))  # fmt: skip
    assert [c.type for c in validate_storage_map(bad_sto, SOURCE, TARGET).conditions] == ["StorageClassNotFound"]
    assert validate_storage_map(STORAGE_MAP, SOURCE, TARGET).ready


@pytest.mark.parametrize("name", ["Web Server #1", "UPPER", "a" * 80, "-lead", "émoji☃"])
def test_sanitized_names_are_valid_and_distinct(name: str) -> None:
    sanitized = to_dns1123_label(name)
    assert is_dns1123_label(sanitized)
    assert to_dns1123_label(name + "x") != sanitized


def test_categories_are_the_documented_words() -> None:
    assert [c.value for c in Category] == ["Critical", "Warning", "Information"]


@pytest.mark.parametrize("namespace", ["../x", "A B", "n" * 64, ""])
@pytest.mark.parametrize("target", [TARGET, TargetView(checked=False)], ids=["kubernetes", "local"])
def test_a_bad_target_namespace_blocks_the_plan_on_every_target_type(namespace: str, target: TargetView) -> None:
    status = validate_plan(plan("web-01", "Bad Name_01", namespace=namespace), context(target=target))
    assert not status.ready
    assert "TargetNamespaceInvalid" in {c.type for c in status.conditions}
    for result in status.vms:
        (concern,) = [c for c in result.concerns if c.id == "vm.target_namespace.invalid"]
        assert concern.category is Category.CRITICAL
        assert f"VM '{result.name}' would be created as '{result.target_name}' in namespace '{namespace}'" in (
            concern.assessment
        )


def test_a_source_name_full_of_odd_characters_gets_a_valid_target_name() -> None:
    source = SourceView(vms=[vm("Finance DB (prod)", "vm-f")], networks=SOURCE.networks, datastores=SOURCE.datastores)
    status = validate_plan(plan("Finance DB (prod)"), context(source=source))
    (result,) = status.vms
    assert is_dns1123_label(result.target_name) and result.target_name.startswith("finance-db-prod-")
    assert status.ready, [c.assessment for c in result.concerns]


def test_a_vm_already_in_a_local_target_blocks_a_plan_that_would_overwrite_it() -> None:
    local = TargetView(checked=False, vms=[TargetVmRecord(id="ferry/web-01", name="web-01", namespace="ferry")])
    status = validate_plan(plan("web-01"), context(target=local))
    assert "vm.target.exists" in concern_ids(status, "web-01")
    assert not status.ready
    assert validate_plan(plan("web-01", namespace="other"), context(target=local)).ready


def test_a_mac_already_in_a_local_target_blocks_the_plan_as_on_a_cluster() -> None:
    occupant = TargetVmRecord(id="ferry/other", name="other", namespace="ferry", macs=("AA:00:00:00:00:01",))
    status = validate_plan(plan("web-01"), context(target=TargetView(checked=False, vms=[occupant])))
    (concern,) = [c for c in status.vms[0].concerns if c.id == "vm.target.mac_conflict"]
    assert concern.category is Category.CRITICAL
    assert "ferry/other" in concern.assessment
    assert not status.ready


def pair_source(*vms: VmRecord) -> SourceView:
    return SourceView(vms=list(vms), networks=SOURCE.networks, datastores=SOURCE.datastores, hosts=SOURCE.hosts)


def test_two_vms_of_a_plan_with_the_same_mac_each_name_the_other() -> None:
    source = pair_source(vm("app-a", "vm-a", nics=(("net-1", "02:00:00:00:00:0a"),)),
                         vm("app-b", "vm-b", nics=(("net-1", "02:00:00:00:00:0A"),)))  # fmt: skip
    status = validate_plan(plan("app-a", "app-b"), context(source=source))
    assert not status.ready
    assert "DuplicateMAC" in {c.type for c in status.conditions}
    for ref, other in (("app-a", "'app-b' (vm-b)"), ("app-b", "'app-a' (vm-a)")):
        (result,) = [r for r in status.vms if r.ref == ref]
        (concern,) = [c for c in result.concerns if c.id == "vm.mac.duplicate"]
        assert concern.category is Category.CRITICAL
        assert "02:00:00:00:00:0a" in concern.assessment and other in concern.assessment
    assert validate_plan(plan("app-a"), context(source=source)).ready, "alone, either VM is fine"


def test_two_vms_of_a_plan_given_the_same_target_name_each_name_the_other() -> None:
    source = pair_source(vm("app-a", "vm-a", nics=(("net-1", "02:00:00:00:00:0a"),)),
                         vm("app-b", "vm-b", nics=(("net-1", "02:00:00:00:00:0b"),)))  # fmt: skip
    same_name = Plan(
        name="p", source_provider="vc", target_provider="kube", network_map="net", storage_map="sto",
        target_namespace="ferry", vms=(PlanVm(ref="app-a", target_name="app"), PlanVm(ref="app-b", target_name="app")),
    )  # fmt: skip
    status = validate_plan(same_name, context(source=source))
    assert not status.ready
    assert "DuplicateTargetName" in {c.type for c in status.conditions}
    for ref, other in (("app-a", "'app-b' (vm-b)"), ("app-b", "'app-a' (vm-a)")):
        (result,) = [r for r in status.vms if r.ref == ref]
        (concern,) = [c for c in result.concerns if c.id == "vm.target_name.duplicate"]
        assert concern.category is Category.CRITICAL and other in concern.assessment
    assert validate_plan(plan("app-a", "app-b"), context(source=source)).ready, "distinct names and MACs are fine"


def test_a_vm_listed_twice_does_not_clash_with_itself() -> None:
    status = validate_plan(plan("web-01", "vm-1"), context())
    assert all(concern_ids(status, ref).isdisjoint({"vm.mac.duplicate", "vm.target_name.duplicate"})
               for ref in ("web-01", "vm-1"))  # fmt: skip
    assert {c.type for c in status.conditions} == {"DuplicateVM"}
