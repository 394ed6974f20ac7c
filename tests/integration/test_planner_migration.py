"""Migrations in the planner, on real NATS, with the planner's real bootstrap and HTTP API.

The test plays the other three services: fake inventory, kubevirt-writer and transfer
workers pull the planner's commands from the commands stream through the same durable
consumers the real services use, and answer with the events the contracts name.
"""

import asyncio
import contextlib
import itertools
import json
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ferry_planner.bootstrap import PlannerApi, bootstrap
from ferry_planner.entrypoints.http_api import install
from ferry_planner.settings import PlannerSettings
from ferry_shared import subjects
from ferry_shared.api_auth.guard import ApiGuard, check_routes
from ferry_shared.api_auth.local_token import LocalTokenAuthenticator
from ferry_shared.bus.consumer import DurableConsumer, HandlerTable
from ferry_shared.bus.delivery import Delivery
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import Secret
from ferry_shared.errors import PermanentError
from ferry_shared.health import health_app
from ferry_shared.inventory import (
    DatastoreRecord,
    DiskRecord,
    HostRecord,
    NadRecord,
    NamespaceRecord,
    NetworkRecord,
    NicRecord,
    Record,
    StorageClassRecord,
    TargetVmRecord,
    VmRecord,
    inventory_key,
    status_key,
)
from ferry_shared.messages import Event, Message, decoder_for
from ferry_shared.migrations import (
    CleanupVm,
    CopyDisk,
    CreateVm,
    DiskCopied,
    DiskCopyProgress,
    MigrationFinished,
    PowerOffSourceVm,
    PrepareVolumes,
    RestoreSourcePowerState,
    SinkLocation,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourcePowerStateRestored,
    SourceVmPoweredOff,
    VmCancelRequested,
    VmCleanedUp,
    VmCreated,
    VmPhaseChanged,
    VolumesPrepared,
    step_id,
)
from ferry_shared.providers import ConnectProvider, ProviderPhase, ProviderStatus
from ferry_shared.service import Bus, Wired
from ferry_shared.settings import ServiceSettings
from ferry_testpeers.waiting import async_wait_for, eventually

from .service_runner import commands_spec

pytestmark = pytest.mark.nats

MIB = 2**20
PIPELINE = ["Started", "StorePowerState", "PowerOffSource", "WaitForPowerOff", "CreateDataVolumes", "CopyDisks",
            "CreateVM", "Completed"]  # fmt: skip


# ── the source inventory ────────────────────────────────────────────────────────────


def _vm(vm_id: str, name: str, power: str, disks: list[tuple[str, int]], nics: list[str]) -> VmRecord:
    return VmRecord(
        id=vm_id, name=name, power_state=power, memory_mib=1024, cpu_sockets=1, cores_per_socket=2,
        host_id="host-1", host_name="DC0_H0", datacenter_name="DC0", cbt_enabled=True,
        disks=tuple(
            DiskRecord(key=2000 + i, file_name=f"[{ds}] {name}/{name}_{i}.vmdk", datastore_id=ds.lower(),
                       datastore_name=ds, capacity_bytes=size, cbt=True)
            for i, (ds, size) in enumerate(disks)
        ),
        nics=tuple(
            NicRecord(key=4000 + i, mac=f"00:50:56:{vm_id[-1]}0:00:0{i}", network_id=net.lower().replace(" ", "-"),
                      network_name=net, adapter="vmxnet3")
            for i, net in enumerate(nics)
        ),
    )  # fmt: skip


VMS = [
    _vm("vm-1", "web-01", "poweredOn", [("LocalDS_0", 4 * MIB), ("LocalDS_1", 2 * MIB)], ["VM Network"]),
    _vm("vm-2", "db-01", "poweredOff", [("LocalDS_1", 8 * MIB)], ["VM Network", "DC0_DVPG0"]),
    _vm("vm-3", "Cache Server", "poweredOn", [("LocalDS_0", 2 * MIB)], ["DC0_DVPG0"]),
]
SOURCE_RECORDS: list[tuple[str, Record]] = [
    *(("vm", vm) for vm in VMS),
    ("network", NetworkRecord(id="vm-network", name="VM Network")),
    ("network", NetworkRecord(id="dc0_dvpg0", name="DC0_DVPG0", kind="distributed")),
    ("datastore", DatastoreRecord(id="localds_0", name="LocalDS_0")),
    ("datastore", DatastoreRecord(id="localds_1", name="LocalDS_1")),
    ("host", HostRecord(id="host-1", name="DC0_H0")),
]


TARGET_RECORDS: list[tuple[str, Record]] = [
    ("namespace", NamespaceRecord(id="apps", name="apps")),
    ("storageclass", StorageClassRecord(id="fast", name="fast")),
    ("storageclass", StorageClassRecord(id="slow", name="slow")),
    ("nad", NadRecord(id="apps/vlan-100", name="vlan-100", namespace="apps")),
]


async def put_records(bus: Bus, provider: str, records: list[tuple[str, Record]]) -> None:
    kv = await ensure_kv(bus.js, subjects.INVENTORY_BUCKET)
    for kind, record in records:
        await kv.put(inventory_key(provider, kind, record.id), msgspec.json.encode(record))


async def seed_inventory(bus: Bus) -> None:
    """What the inventory service would have stored for a ready vCenter and cluster."""
    await put_records(bus, "vc", SOURCE_RECORDS)
    await put_records(bus, "kube", TARGET_RECORDS)
    kv = await ensure_kv(bus.js, subjects.INVENTORY_BUCKET)
    for provider in ("vc", "kube"):
        status = ProviderStatus(phase=ProviderPhase.READY, generation=1)
        await kv.put(status_key(provider), msgspec.json.encode(status))


# ── the other three services ────────────────────────────────────────────────────────


@dataclass
class FakePeers:
    """Inventory, kubevirt-writer and transfer as the planner sees them over NATS."""

    bus: Bus
    work_dir: Path
    fail_copy: set[str] = field(default_factory=set)  # VM ids whose disk copies fail permanently
    hold_copy: set[str] = field(default_factory=set)  # VM ids whose copies stop at half
    commands: list[Message] = field(default_factory=list)
    power: dict[str, str] = field(default_factory=lambda: {vm.id: vm.power_state for vm in VMS})

    async def emit(self, event: Event) -> None:
        await self.bus.publisher.publish(event)

    def received(self, kind: type[Message], vm_id: str | None = None) -> list[Any]:
        return [c for c in self.commands if isinstance(c, kind) and (vm_id is None or getattr(c, "vm_id", "") == vm_id)]

    # inventory
    async def connect_provider(self, command: ConnectProvider, delivery: Delivery) -> None:
        self.commands.append(command)

    async def power_off(self, command: PowerOffSourceVm, delivery: Delivery) -> None:
        self.commands.append(command)
        m, vm = command.migration, command.vm_id
        before = self.power[vm]
        await self.emit(SourcePowerStateRecorded(message_id=step_id(m, vm, "recorded"), migration=m, vm_id=vm,
                                                 power_state=before))  # fmt: skip
        if before == "poweredOn":
            await self.emit(SourcePowerOffRequested(message_id=step_id(m, vm, "requested"), migration=m, vm_id=vm,
                                                    method="guest_shutdown"))  # fmt: skip
            self.power[vm] = "poweredOff"
        await self.emit(SourceVmPoweredOff(message_id=step_id(m, vm, "off"), migration=m, vm_id=vm))

    async def restore(self, command: RestoreSourcePowerState, delivery: Delivery) -> None:
        self.commands.append(command)
        self.power[command.vm_id] = command.power_state
        await self.emit(SourcePowerStateRestored(message_id=step_id(command.migration, command.vm_id, "restored"),
                        migration=command.migration, vm_id=command.vm_id, power_state=command.power_state))  # fmt: skip

    # kubevirt-writer
    async def prepare(self, command: PrepareVolumes, delivery: Delivery) -> None:
        self.commands.append(command)
        sinks = tuple(
            SinkLocation(disk_key=d.key, kind="file", size_bytes=d.capacity_bytes,
                     path=str(self.work_dir / command.vm.name / f"disk-{i}.raw"))
            for i, d in enumerate(command.vm.disks)
        )  # fmt: skip
        await self.emit(VolumesPrepared(message_id=step_id(command.migration, command.vm_id, "prepared"),
                                        migration=command.migration, vm_id=command.vm_id, sinks=sinks))  # fmt: skip

    async def create_vm(self, command: CreateVm, delivery: Delivery) -> None:
        self.commands.append(command)
        location = f"{command.vm.namespace}/{command.vm.name}"
        await self.emit(VmCreated(message_id=step_id(command.migration, command.vm_id, "created"),
                                  migration=command.migration, vm_id=command.vm_id, location=location))  # fmt: skip

    async def cleanup(self, command: CleanupVm, delivery: Delivery) -> None:
        self.commands.append(command)
        await self.emit(VmCleanedUp(message_id=step_id(command.migration, command.vm_id, "cleaned"),
                                    migration=command.migration, vm_id=command.vm_id,
                                    removed=(f"raw file {command.vm.name}",)))  # fmt: skip

    # transfer
    async def copy(self, command: CopyDisk, delivery: Delivery) -> None:
        self.commands.append(command)
        m, vm, key, total = command.migration, command.vm_id, command.disk.key, command.disk.capacity_bytes
        if vm in self.fail_copy:
            raise PermanentError("source_read_failed", f"HTTP 503 reading {command.disk.file_name}")
        await self.progress(m, vm, key, total // 2, total)
        if vm not in self.hold_copy:
            await self.finish_copy(m, vm, key, total)

    async def progress(self, m: str, vm: str, key: int, done: int, total: int) -> None:
        await self.emit(DiskCopyProgress(message_id=step_id(m, vm, "progress", key, done), migration=m, vm_id=vm,
                                         disk_key=key, bytes_done=done, bytes_total=total))  # fmt: skip

    async def finish_copy(self, m: str, vm: str, key: int, total: int, *, attempt: int = 0) -> None:
        await self.progress(m, vm, key, total, total)
        await self.emit(DiskCopied(message_id=step_id(m, vm, "copied", key, attempt), migration=m, vm_id=vm,
                                   disk_key=key, bytes_total=total, bytes_read=total, bytes_written=total,
                                   zero_bytes_skipped=0, sha256="0" * 64, seconds=0.01))  # fmt: skip

    def tables(self) -> dict[str, HandlerTable]:
        return {
            subjects.INVENTORY: {ConnectProvider: self.connect_provider, PowerOffSourceVm: self.power_off,
                                 RestoreSourcePowerState: self.restore},
            subjects.KUBEVIRT_WRITER: {PrepareVolumes: self.prepare, CreateVm: self.create_vm, CleanupVm: self.cleanup},
            subjects.TRANSFER: {CopyDisk: self.copy},
        }  # fmt: skip


@contextlib.asynccontextmanager
async def peers_running(peers: FakePeers) -> AsyncIterator[FakePeers]:
    stop = asyncio.Event()
    tasks = []
    for service, table in peers.tables().items():
        spec = commands_spec(service, max_deliver=1, fetch_timeout=0.2)
        tasks.append(asyncio.create_task(DurableConsumer(peers.bus.js, peers.bus.publisher, spec, table).run(stop)))
    try:
        yield peers
    finally:
        stop.set()
        await asyncio.gather(*tasks)


# ── the planner, in-process ─────────────────────────────────────────────────────────


@dataclass
class Planner:
    service: Wired[PlannerApi]
    http: httpx.AsyncClient
    sse: list[dict[str, Any]]

    async def post(self, path: str, body: dict[str, Any], status: int = 201) -> Any:
        response = await self.http.post(f"/api/v1{path}", json=body)
        assert response.status_code == status, response.text
        return response.json()

    async def get(self, path: str) -> Any:
        response = await self.http.get(f"/api/v1{path}")
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_migration(self, name: str, phase: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            found: dict[str, Any] = await self.get(f"/migrations/{name}")
            return found if found["phase"] == phase else None

        return await async_wait_for(probe, timeout=20, what=f"migration {name} to be {phase}")

    async def wait_vm(self, name: str, vm_id: str, check: Any, what: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            found = await self.get(f"/migrations/{name}")
            vm: dict[str, Any] = next(v for v in found["vms"] if v["vm_id"] == vm_id)
            return vm if check(vm) else None

        return await async_wait_for(probe, timeout=20, what=what)


TEST_TOKEN = Secret(secrets.token_urlsafe(32))
"""The API token of the services these tests run in-process."""
AUTH = {"Authorization": f"Bearer {TEST_TOKEN.reveal()}"}


def local_guard() -> ApiGuard:
    """The guard of the in-process services: :data:`TEST_TOKEN` may do everything."""
    return ApiGuard(LocalTokenAuthenticator(TEST_TOKEN))


@contextlib.asynccontextmanager
async def planner_running(
    bus: Bus, *, max_vms_per_host: int = 10, step_deadline: float = 900.0
) -> AsyncIterator[Planner]:
    settings = ServiceSettings()
    own = PlannerSettings(max_vms_per_host=max_vms_per_host, step_deadline=step_deadline)
    wired = await bootstrap(bus, settings, own)
    assert await _consumer_exists(bus), "the event consumer exists before the API can start a migration"
    app = health_app("planner", {}, local_guard())
    install(app, wired.api)
    check_routes(app)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(job(stop)) for job in wired.parts.background]  # the event consumer among them
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=2))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    sse: list[dict[str, Any]] = []
    connected = asyncio.Event()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as http:
        await eventually(lambda: server.started, timeout=10, what="the planner's HTTP server")
        reader = asyncio.create_task(_read_events(http, sse, connected))
        await asyncio.wait_for(connected.wait(), 10)
        try:
            yield Planner(service=wired, http=http, sse=sse)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            stop.set()
            await asyncio.gather(*tasks)
            server.should_exit = True
            await serving
    sock.close()


async def _read_events(http: httpx.AsyncClient, sink: list[dict[str, Any]], connected: asyncio.Event) -> None:
    async with http.stream("GET", "/api/v1/events", timeout=None) as response:
        async for line in response.aiter_lines():
            connected.set()
            if line.startswith("data: "):
                sink.append(json.loads(line[6:]))


async def _consumer_exists(bus: Bus) -> bool:
    try:
        await bus.js.consumer_info(subjects.EVENTS_STREAM, subjects.events_durable_name(subjects.PLANNER))
    except Exception:  # noqa: BLE001 - not created yet
        return False
    return True


async def make_plan(planner: Planner, *, vms: tuple[str, ...] = ("web-01", "db-01", "vm-3")) -> None:
    await planner.post("/providers", {"name": "vc", "type": "vsphere", "url": "https://127.0.0.1:9/sdk",
                                      "username": "admin", "password": "s3cret", "insecure": True})  # fmt: skip
    await planner.post("/providers", {"name": "kube", "type": "kubernetes", "in_cluster": True})
    await planner.post("/networkmaps", {"name": "net", "source_provider": "vc", "target_provider": "kube", "pairs": [
        {"source": "VM Network", "destination": "pod"},
        {"source": "DC0_DVPG0", "destination": "multus", "nad": "apps/vlan-100"}]})  # fmt: skip
    await planner.post("/storagemaps", {"name": "sto", "source_provider": "vc", "target_provider": "kube",
                                        "pairs": [{"source": "LocalDS_0", "storage_class": "fast"},
                                                  {"source": "LocalDS_1", "storage_class": "slow"}]})  # fmt: skip
    await planner.post("/plans", {"name": "p1", "source_provider": "vc", "target_provider": "kube",
                                  "network_map": "net", "storage_map": "sto", "target_namespace": "apps",
                                  "vms": [{"ref": ref} for ref in vms]})  # fmt: skip

    async def ready() -> bool:
        return bool((await planner.get("/plans/p1"))["status"]["ready"])

    await async_wait_for(ready, timeout=10, what="plan p1 to be ready")


async def bus_events(bus: Bus, *types: type[Message]) -> list[Any]:
    """Every event of ``types`` on the events stream so far."""
    decoder = decoder_for(list(types))
    tags = {t.type_tag() for t in types}
    subscription = await bus.js.pull_subscribe(subjects.ALL_EVENTS, stream=subjects.EVENTS_STREAM)
    found: list[Any] = []
    with contextlib.suppress(TimeoutError):
        while True:
            for msg in await subscription.fetch(200, timeout=0.3):
                await msg.ack()
                if msg.headers and msg.headers.get(subjects.MESSAGE_TYPE_HEADER) in tags:
                    found.append(decoder.decode(msg.data))
    await subscription.unsubscribe()
    return found


def vm_of(migration: dict[str, Any], vm_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(vm for vm in migration["vms"] if vm["vm_id"] == vm_id)
    return found


# ── tests ───────────────────────────────────────────────────────────────────────────


@pytest.fixture
async def peers(bus: Bus, tmp_path: Path) -> AsyncIterator[FakePeers]:
    await seed_inventory(bus)
    async with peers_running(FakePeers(bus=bus, work_dir=tmp_path / "target")) as running:
        yield running


async def test_three_vms_migrate_with_progress_on_nats_and_sse(
    bus: Bus, peers: FakePeers, spans: InMemorySpanExporter
) -> None:
    async with planner_running(bus) as planner:
        await make_plan(planner)
        missing = await planner.http.post("/api/v1/migrations", json={"plan": "nope"})
        assert (missing.status_code, missing.json()["reason"]) == (404, "not_found")

        created = await planner.post("/migrations", {"plan": "p1"})
        assert created["name"] == "p1-1"
        assert [vm["vm_id"] for vm in created["vms"]] == ["vm-1", "vm-2", "vm-3"], "plan order"
        assert created["counts"]["total"] == 3
        done = await planner.wait_migration("p1-1", "Succeeded")

        assert done["completed_at"] is not None
        assert done["counts"] == {"total": 3, "queued": 0, "running": 0, "succeeded": 3, "failed": 0,
                                  "canceled": 0, "skipped": 0}  # fmt: skip
        cache = vm_of(done, "vm-3")
        assert cache["target_name"].startswith("cache-server-"), "the sanitized DNS-1123 name"
        assert cache["location"] == f"apps/{cache['target_name']}"
        for vm in done["vms"]:
            assert vm["phase"] == "Completed" and vm["host"] == "DC0_H0"
            assert [p["name"] for p in vm["pipeline"]] == PIPELINE
            assert all(p["started_at"] and p["completed_at"] for p in vm["pipeline"])
            assert all(d["completed"] and d["bytes_done"] == d["bytes_total"] > 0 for d in vm["disks"])
        assert [(d["key"], d["bytes_total"]) for d in vm_of(done, "vm-1")["disks"]] == [
            (2000, 4 * MIB),
            (2001, 2 * MIB),
        ]
        runs = {c.vm_id: c.vm.run for c in peers.received(CreateVm)}
        assert runs == {"vm-1": True, "vm-2": False, "vm-3": True}, "targets run where the sources ran"
        prepared = peers.received(PrepareVolumes, "vm-2")[0].vm
        assert [(n.destination, n.nad) for n in prepared.nics] == [("pod", ""), ("multus", "apps/vlan-100")]
        assert peers.received(CleanupVm) == [] and peers.received(RestoreSourcePowerState) == []

        await eventually(
            lambda: any(e["kind"] == "migration" and e["migration"]["phase"] == "Succeeded" for e in planner.sse),
            timeout=5,
            what="the finished migration on SSE",
        )
        vm_changes = [e for e in planner.sse if e["kind"] == "migration_vm"]
        assert {e["vm"]["phase"] for e in vm_changes} >= set(PIPELINE[1:])
        assert any(0 < d["bytes_done"] < d["bytes_total"] for e in vm_changes for d in e["vm"]["disks"]), "progress"
        assert planner.sse[[e["kind"] for e in planner.sse].index("migration")]["migration"]["phase"] == "Running"

    events = await bus_events(bus, VmPhaseChanged, MigrationFinished)
    changes = [e for e in events if isinstance(e, VmPhaseChanged)]
    for vm_id in ("vm-1", "vm-2", "vm-3"):
        assert [e.phase for e in changes if e.vm_id == vm_id] == PIPELINE
    [finished] = [e for e in events if isinstance(e, MigrationFinished)]
    assert (finished.migration, finished.succeeded, finished.failed, finished.canceled) == ("p1-1", 3, 0, 0)
    check_one_trace_per_vm(spans, ("vm-1", "vm-2", "vm-3"))


def check_one_trace_per_vm(spans: InMemorySpanExporter, vm_ids: tuple[str, ...]) -> None:
    """Every command and event of one VM (the planner's and the peers') is in that VM's own trace."""
    traces: dict[str, set[int]] = {vm_id: set() for vm_id in vm_ids}
    kinds: dict[str, set[str]] = {vm_id: set() for vm_id in vm_ids}
    for span in spans.get_finished_spans():
        attributes = span.attributes or {}
        message_id = str(attributes.get("messaging.message.id", ""))
        for vm_id in vm_ids:
            if span.kind is SpanKind.PRODUCER and f":{vm_id}:" in message_id and span.context is not None:
                traces[vm_id].add(span.context.trace_id)
                kinds[vm_id].add(str(attributes["ferry.message.type"]))
    for vm_id in vm_ids:
        assert len(traces[vm_id]) == 1, f"{vm_id}'s messages are spread over {len(traces[vm_id])} traces"
        assert {PowerOffSourceVm.type_tag(), PrepareVolumes.type_tag(), CopyDisk.type_tag(), CreateVm.type_tag(),
                DiskCopied.type_tag(), VmCreated.type_tag()} <= kinds[vm_id]  # fmt: skip
    assert len(set.union(*traces.values())) == len(vm_ids), "each VM has a trace of its own"


async def test_a_failing_vm_leaves_the_others_running_and_a_rerun_skips_what_completed(
    bus: Bus, peers: FakePeers
) -> None:
    peers.fail_copy.add("vm-1")
    async with planner_running(bus) as planner:
        await make_plan(planner)
        await planner.post("/migrations", {"plan": "p1"})
        first = await planner.wait_migration("p1-1", "Failed")
        failed = vm_of(first, "vm-1")
        assert failed["error_code"] == "source_read_failed"
        assert failed["reason"].startswith("CopyDisks failed: HTTP 503 reading [LocalDS_")
        assert failed["completed_at"] is not None
        assert [vm_of(first, v)["phase"] for v in ("vm-2", "vm-3")] == ["Completed", "Completed"]
        assert first["counts"]["failed"] == 1 and first["counts"]["succeeded"] == 2
        await eventually(lambda: peers.power["vm-1"] == "poweredOn", timeout=10, what="the source to be back on")
        assert [c.vm_id for c in peers.received(CleanupVm)] == ["vm-1"]
        [restore] = peers.received(RestoreSourcePowerState)
        assert (restore.vm_id, restore.power_state) == ("vm-1", "poweredOn")

        # The cluster's inventory now shows the VMs this plan created: they are not in the way of a rerun.
        created = [TargetVmRecord(id=f"apps/{vm['target_name']}", name=vm["target_name"], namespace="apps",
                                  macs=tuple(nic.mac for nic in record.nics))
                   for record in VMS if (vm := vm_of(first, record.id))["phase"] == "Completed"]  # fmt: skip
        await put_records(bus, "kube", [("targetvm", vm) for vm in created])

        async def migrated() -> list[str] | None:
            status = (await planner.get("/plans/p1"))["status"]
            found = [vm["id"] for vm in status["vms"] if any(c["id"] == "vm.migrated" for c in vm["concerns"])]
            return found if status["ready"] and found else None

        assert await async_wait_for(migrated, timeout=10, what="plan p1 to know what it migrated") == ["vm-2", "vm-3"]
        peers.fail_copy.clear()
        rerun = await planner.post("/migrations", {"plan": "p1"})
        assert rerun["name"] == "p1-2"
        assert [(vm["vm_id"], vm["phase"], vm["reason"]) for vm in rerun["vms"] if vm["phase"] == "Skipped"] == [
            ("vm-2", "Skipped", "already migrated by migration p1-1"),
            ("vm-3", "Skipped", "already migrated by migration p1-1"),
        ]
        second = await planner.wait_migration("p1-2", "Succeeded")
        assert second["counts"]["skipped"] == 2 and second["counts"]["succeeded"] == 1
        assert sorted(c.vm_id for c in peers.received(CreateVm)) == ["vm-1", "vm-2", "vm-3"], "nothing migrated twice"
        listed = await planner.get("/migrations?plan=p1")
        assert [m["name"] for m in listed] == ["p1-2", "p1-1"], "newest first"


async def test_cancel_during_the_copy_removes_partial_objects_and_restores_the_source(
    bus: Bus, peers: FakePeers
) -> None:
    peers.hold_copy.add("vm-1")
    async with planner_running(bus) as planner:
        await make_plan(planner)
        await planner.post("/migrations", {"plan": "p1"})
        await planner.wait_vm(
            "p1-1", "vm-1", lambda vm: vm["phase"] == "CopyDisks" and vm["disks"][0]["bytes_done"] > 0, "web-01 copying"
        )
        busy = await planner.http.post("/api/v1/migrations", json={"plan": "p1"})
        assert (busy.status_code, busy.json()["reason"]) == (409, "already_running")
        unknown = await planner.http.post("/api/v1/migrations/p1-1/cancel", json={"vms": ["ghost"]})
        assert (unknown.status_code, unknown.json()["reason"]) == (404, "not_found")

        accepted = await planner.post("/migrations/p1-1/cancel", {"vms": ["web-01"]}, status=202)
        assert vm_of(accepted, "vm-1")["phase"] in ("Canceling", "Canceled")
        final = await planner.wait_migration("p1-1", "Canceled")
        canceled = vm_of(final, "vm-1")
        assert canceled["phase"] == "Canceled" and canceled["completed_at"] is not None
        assert canceled["pipeline"][-1]["name"] == "CopyDisks"
        assert [vm_of(final, v)["phase"] for v in ("vm-2", "vm-3")] == ["Completed", "Completed"]
        assert [c.vm_id for c in peers.received(CleanupVm)] == ["vm-1"]
        await eventually(lambda: peers.power["vm-1"] == "poweredOn", timeout=10, what="web-01 to be back on")

        # Late copy results for the cancelled VM change nothing; cancelling a finished VM is no error.
        await peers.finish_copy("p1-1", "vm-1", 2000, 4 * MIB)
        again = await planner.post("/migrations/p1-1/cancel", {"vms": ["vm-1", "db-01"]}, status=202)
        assert vm_of(again, "vm-1") == canceled and vm_of(again, "vm-2")["phase"] == "Completed"
        assert peers.received(CreateVm, "vm-1") == []

    stops = await bus_events(bus, VmCancelRequested)
    assert [(e.migration, e.vm_id) for e in stops] == [("p1-1", "vm-1")]


async def test_a_vm_written_by_another_replica_is_taken_in_and_a_cancel_after_it_works(
    bus: Bus, peers: FakePeers
) -> None:
    peers.hold_copy.add("vm-1")
    async with planner_running(bus, max_vms_per_host=1) as planner:
        await make_plan(planner)
        created = await planner.post("/migrations", {"plan": "p1"})
        assert vm_of(created, "vm-3")["phase"] == "Queued"
        # Another replica writes vm-3's key: this replica's copy follows the bucket.
        kv = await ensure_kv(bus.js, subjects.PLANNER_BUCKET)
        key = "migration.p1-1.vm.vm-3"
        written = json.loads((await kv.get(key)).value or b"{}")
        await kv.put(key, json.dumps({**written, "reason": "noted by another replica"}).encode())

        async def taken_in() -> bool | None:
            return vm_of(await planner.get("/migrations/p1-1"), "vm-3")["reason"] == "noted by another replica" or None

        await async_wait_for(taken_in, timeout=10, what="the other replica's write to reach this one's copy")
        assert any(e["kind"] == "migration_vm" and e["vm"]["reason"] == "noted by another replica" for e in planner.sse)
        canceled = await planner.post("/migrations/p1-1/cancel", {"vms": ["vm-3"]}, status=202)
        assert vm_of(canceled, "vm-3")["phase"] == "Canceled"
        stored = json.loads((await kv.get(key)).value or b"{}")
        assert stored["phase"] == "Canceled", "its write, made with the other's revision, did not fail"


async def test_a_budget_of_one_migrates_the_vms_one_after_another(bus: Bus, peers: FakePeers) -> None:
    async with planner_running(bus, max_vms_per_host=1) as planner:
        await make_plan(planner)
        created = await planner.post("/migrations", {"plan": "p1"})
        assert vm_of(created, "vm-1")["phase"] != "Queued"
        for vm_id in ("vm-2", "vm-3"):
            assert vm_of(created, vm_id)["phase"] == "Queued"
            assert vm_of(created, vm_id)["reason"] == "waiting for a slot on host DC0_H0 (1 of 1 running)"
        done = await planner.wait_migration("p1-1", "Succeeded")
    spans = sorted((vm["started_at"], vm["completed_at"]) for vm in done["vms"])
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert started >= ended, f"a VM started at {started} before the previous one ended at {ended}"
    powered = [c.vm_id for c in peers.received(PowerOffSourceVm)]
    assert powered == ["vm-1", "vm-2", "vm-3"]


async def test_a_restarted_planner_continues_from_its_bucket_and_its_durable_consumer(
    bus: Bus, peers: FakePeers
) -> None:
    peers.hold_copy.add("vm-2")
    async with planner_running(bus) as planner:
        await make_plan(planner)
        await planner.post("/migrations", {"plan": "p1"})
        await planner.wait_vm("p1-1", "vm-2", lambda vm: vm["disks"][0]["bytes_done"] > 0, "db-01 to be copying")

    # While the planner is down the copy finishes, and its result arrives twice.
    await peers.finish_copy("p1-1", "vm-2", 2000, 8 * MIB)
    await peers.finish_copy("p1-1", "vm-2", 2000, 8 * MIB, attempt=1)

    async with planner_running(bus) as planner:
        done = await planner.wait_migration("p1-1", "Succeeded")
        db = vm_of(done, "vm-2")
        assert db["disks"] == [{"key": 2000, "file_name": "[LocalDS_1] db-01/db-01_0.vmdk", "bytes_total": 8 * MIB,
                                "bytes_done": 8 * MIB, "completed": True, "bytes_read": 8 * MIB,
                                "bytes_written": 8 * MIB, "bytes_to_read": 8 * MIB}]  # fmt: skip
        assert [p["name"] for p in db["pipeline"]] == PIPELINE
    assert len(peers.received(CreateVm, "vm-2")) == 1
    changes = [e.phase for e in await bus_events(bus, VmPhaseChanged) if e.vm_id == "vm-2"]
    assert changes == PIPELINE, "every phase announced once across the restart"


async def test_a_provider_in_use_by_a_running_migration_cannot_be_deleted(bus: Bus, peers: FakePeers) -> None:
    peers.hold_copy.add("vm-2")
    async with planner_running(bus) as planner:
        await make_plan(planner)
        await planner.post("/migrations", {"plan": "p1"})
        await planner.wait_vm("p1-1", "vm-2", lambda vm: vm["disks"][0]["bytes_done"] > 0, "db-01 to be copying")
        for provider in ("vc", "kube"):
            refused = await planner.http.delete(f"/api/v1/providers/{provider}")
            assert refused.status_code == 409, refused.text
            assert refused.json()["reason"] == "provider_in_use"
            assert "migration 'p1-1'" in refused.json()["message"]
        assert (await planner.get("/providers/vc"))["has_credentials"]
        await planner.post("/migrations/p1-1/cancel", {}, status=202)
        await planner.wait_migration("p1-1", "Canceled")

        async def deleted() -> bool | None:
            return (await planner.http.delete("/api/v1/providers/vc")).status_code == 204 or None

        await async_wait_for(deleted, timeout=20, what="the provider to be deletable once the sources are restored")


async def test_a_copy_that_goes_silent_fails_at_the_deadline_naming_the_transfer(bus: Bus, peers: FakePeers) -> None:
    peers.hold_copy.add("vm-2")
    async with planner_running(bus, step_deadline=3.0) as planner:
        await make_plan(planner)
        await planner.post("/migrations", {"plan": "p1"})
        copying = await planner.wait_vm(
            "p1-1", "vm-2", lambda vm: vm["disks"][0]["bytes_done"] > 0, "db-01 to be copying"
        )
        assert (copying["waiting_for"]["service"], copying["waiting_for"]["step"]) == ("transfer", "CopyDisk")
        failed = await planner.wait_vm("p1-1", "vm-2", lambda vm: vm["phase"] == "Failed", "db-01 to give up")
        assert failed["error_code"] == "step_timeout"
        assert failed["reason"].startswith("CopyDisks got no answer from the transfer service (CopyDisk) for 3 seconds")
        assert failed["waiting_for"] is None
        done = await planner.wait_migration("p1-1", "Failed")
    assert [vm["phase"] for vm in done["vms"]] == ["Completed", "Failed", "Completed"]
    assert len(peers.received(CleanupVm, "vm-2")) == 1
    assert [e.vm_id for e in await bus_events(bus, VmCancelRequested)] == ["vm-2"]
