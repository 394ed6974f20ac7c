"""Kept plan results against a real nats-server: the planner's bucket and the inventory
bucket (followed by the mirror). Once the mirror has applied an inventory record, and once
a map is written, the very next listing shows the plan's new result: nothing is waited for
after the change has been processed."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import pytest
from nats.js.kv import KeyValue

from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.adapters.inventory_mirror import InventoryMirror
from ferry_planner.adapters.migration_store import MigrationStore
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.adapters.revalidation import DebouncedRevalidation
from ferry_planner.domain.maps import NetworkDestination, NetworkMap, NetworkPair, StorageMap, StoragePair
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_planner.domain.providers import ProviderRecord
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.plans import plan_view, plans
from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import Secret
from ferry_shared.inventory import (
    DatastoreRecord,
    DiskRecord,
    HostRecord,
    NetworkRecord,
    NicRecord,
    Record,
    TargetVmRecord,
    VmRecord,
    inventory_key,
    status_key,
)
from ferry_shared.messages import utc_now
from ferry_shared.plans import PlanStatus
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus
from ferry_shared.service import Bus
from ferry_testpeers.waiting import eventually

SOURCE = ProviderSpec(name="vc", type="vsphere", url="https://vc/sdk", username="u", insecure=True)
TARGET = ProviderSpec(name="dir", type="local", path="/var/ferry")
MAC = "00:50:56:00:00:01"
VM = VmRecord(
    id="vm-1", name="app-1", power_state="poweredOff", cpu_sockets=1, cores_per_socket=1, memory_mib=1024,
    host_id="host-1", host_name="HOST-1", datacenter_name="DC0",
    disks=(DiskRecord(key=2000, file_name="[ds] app-1/d.vmdk", datastore_id="ds-0", datastore_name="LocalDS_0",
                      capacity_bytes=2**23, controller="scsi"),),
    nics=(NicRecord(key=4000, mac=MAC, network_id="net-0", network_name="VM Network"),),
)  # fmt: skip


class Credentials:
    async def put(self, provider: str, secret: Secret) -> None: ...

    async def get(self, provider: str) -> Secret | None:
        return None

    async def delete(self, provider: str) -> None: ...


@dataclass
class Planner:
    ports: PlannerPorts
    mirror: InventoryMirror
    inventory_kv: KeyValue

    async def put_record(self, provider: str, kind: str, record: Record) -> None:
        """Write an inventory record as the inventory service does, and wait until the mirror applied it."""
        before = self.mirror.version(provider)
        await self.inventory_kv.put(inventory_key(provider, kind, record.id), msgspec.json.encode(record))
        await eventually(lambda: self.mirror.version(provider) > before, timeout=10, what=f"{kind} {record.id} applied")

    async def listed(self) -> PlanStatus:
        [view] = await plans(self.ports)
        return view.status


@pytest.fixture
async def planner(bus: Bus) -> AsyncIterator[Planner]:
    planner_kv = await ensure_kv(bus.js, subjects.PLANNER_BUCKET)
    inventory_kv = await ensure_kv(bus.js, subjects.INVENTORY_BUCKET)
    repository = PlannerRepository(planner_kv)
    for spec in (SOURCE, TARGET):
        await repository.create(ProviderRecord, spec.name, ProviderRecord(spec=spec))
        ready = ProviderStatus(phase=ProviderPhase.READY, generation=1)
        await inventory_kv.put(status_key(spec.name), msgspec.json.encode(ready))
    ends = {"source_provider": "vc", "target_provider": "dir"}
    pod = NetworkPair(source="VM Network", destination=NetworkDestination.POD)
    await repository.create(NetworkMap, "net", NetworkMap(name="net", **ends, pairs=(pod,)))
    disks = StoragePair(source="LocalDS_0", storage_class="standard")
    await repository.create(StorageMap, "sto", StorageMap(name="sto", **ends, pairs=(disks,)))
    plan = Plan(name="p1", source_provider="vc", target_provider="dir", network_map="net", storage_map="sto",
                target_namespace="default", vms=(PlanVm(ref="app-1"),))  # fmt: skip
    await repository.create(Plan, "p1", plan)
    for kind, record in (
        ("vm", VM),
        ("network", NetworkRecord(id="net-0", name="VM Network")),
        ("datastore", DatastoreRecord(id="ds-0", name="LocalDS_0")),
        ("host", HostRecord(id="host-1", name="HOST-1")),
    ):
        await inventory_kv.put(inventory_key("vc", kind, record.id), msgspec.json.encode(record))
    mirror = InventoryMirror(inventory_kv)
    migrations = MigrationStore(planner_kv)
    await migrations.load()
    ports = PlannerPorts(
        resources=repository, credentials=Credentials(), inventory=mirror, migrations=migrations,
        publisher=bus.publisher, changes=Broadcaster(), revalidation=DebouncedRevalidation(), clock=utc_now,
    )  # fmt: skip
    stop = asyncio.Event()
    following = asyncio.create_task(mirror.run(stop))
    await asyncio.wait_for(mirror.loaded.wait(), 10)
    try:
        yield Planner(ports=ports, mirror=mirror, inventory_kv=inventory_kv)
    finally:
        stop.set()
        await following


async def test_a_kept_result_is_replaced_as_soon_as_its_inventory_or_map_changed(planner: Planner) -> None:
    first = await planner.listed()
    assert first.ready, first
    assert await planner.listed() is first, "nothing changed: the kept result"

    await planner.put_record("dir", "targetvm", TargetVmRecord(id="t1", name="web", namespace="ns", macs=(MAC,)))
    on_target = await planner.listed()
    assert not on_target.ready
    assert "vm.target.mac_conflict" in {c.id for c in on_target.vms[0].concerns}
    assert (await plan_view(planner.ports, "p1")).status is on_target

    await planner.put_record("vc", "vm", msgspec.structs.replace(VM, name="renamed"))
    assert {c.id for c in (await planner.listed()).vms[0].concerns} == {"vm.not_found"}

    await planner.ports.resources.delete(StorageMap, "sto")
    assert {c.type for c in (await planner.listed()).conditions} == {"StorageMapNotFound"}
