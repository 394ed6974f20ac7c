"""The inventory service's in-memory index and its VM filters."""

from ferry_inventory.domain.index import InventoryIndex, VmFilter
from ferry_shared.inventory import DiskRecord, NetworkRecord, NicRecord, VmRecord
from ferry_shared.providers import ProviderPhase, ProviderStatus


def vm(vm_id: str, name: str, datastore: str = "ds-1", network: str = "net-1", power: str = "poweredOn") -> VmRecord:
    return VmRecord(
        id=vm_id,
        name=name,
        power_state=power,
        host_id="host-1",
        host_name="esx-1",
        disks=(
            DiskRecord(
                key=1, file_name="f", datastore_id=datastore, datastore_name=datastore.upper(), capacity_bytes=1
            ),
        ),
        nics=(NicRecord(key=2, mac="m", network_id=network, network_name=network.upper()),),
    )


def test_replace_all_then_apply_tracks_puts_and_deletes() -> None:
    index = InventoryIndex()
    index.replace_all(
        "vc", [("vm", vm("vm-1", "a")), ("vm", vm("vm-2", "b")), ("network", NetworkRecord(id="n", name="n"))]
    )
    index.apply("vc", put=[("vm", vm("vm-3", "c"))], deleted=[("vm", "vm-1")])
    assert [r.id for r in index.records("vc", "vm")] == ["vm-2", "vm-3"]
    assert index.counts("vc") == {"vm": 2, "network": 1}
    index.replace_all("vc", [("vm", vm("vm-9", "z"))])
    assert index.keys("vc") == {("vm", "vm-9")}


def test_vm_filters_match_name_power_host_datastore_and_network_by_name_or_id() -> None:
    index = InventoryIndex()
    db = vm("vm-2", "db-01", datastore="ds-2", network="net-2", power="poweredOff")
    index.replace_all("vc", [("vm", vm("vm-1", "web-01")), ("vm", db)])

    def names(query: VmFilter) -> list[str]:
        return [v.name for v in index.vms("vc", query)]

    assert names(VmFilter(name="WEB")) == ["web-01"]
    assert names(VmFilter(power_state="poweredOff")) == ["db-01"]
    assert names(VmFilter(datastore="DS-2")) == ["db-01"]
    assert names(VmFilter(datastore="ds-2")) == ["db-01"]
    assert names(VmFilter(network="NET-1", host="esx-1")) == ["web-01"]
    assert names(VmFilter()) == ["db-01", "web-01"]


def test_forget_drops_records_and_status() -> None:
    index = InventoryIndex()
    index.replace_all("vc", [("vm", vm("vm-1", "a"))])
    index.set_status("vc", ProviderStatus(phase=ProviderPhase.READY))
    index.forget("vc")
    assert index.providers() == []
