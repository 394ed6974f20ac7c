"""The inventory service's vSphere watcher against the ferry-vcsim simulator: the full
load of a rich inventory, live changes, TLS trust, login failures, session loss, stop."""

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from ferry_inventory.adapters.vsphere import VsphereWatcher, WatchSettings
from ferry_inventory.domain.ports import KindAndId, KindAndRecord
from ferry_peers.vcsim import Vcsim
from ferry_shared.inventory import (
    DatastoreRecord,
    HostRecord,
    NetworkRecord,
    Record,
    VmRecord,
)
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import eventually, wait_for

pytestmark = pytest.mark.vsphere

CHANGE_TIMEOUT = 5.0

RICH_MODEL: dict[str, Any] = {
    "datacenters": [
        {
            "name": "DC0",
            "datastores": [
                {"name": "vmfs-01", "type": "VMFS", "capacity": "10TiB", "free": "3TiB"},
                {"name": "nfs-01", "type": "NFS", "capacity": "1TiB"},
            ],
            "networks": [{"name": "VM Network"}, {"name": "Prod-VLAN10", "vlan": 10}],
            "opaque_networks": [{"name": "nsx-segment-1"}],
            "dvswitches": [{"name": "DSwitch", "portgroups": [{"name": "dvpg-app", "vlan": 20}]}],
            "clusters": [{"name": "Prod", "hosts": [{"name": "esx-01"}, {"name": "esx-02", "maintenance": True}]}],
            "hosts": [{"name": "esx-solo"}],
            "folders": ["Prod/DB"],
            "vms": [
                {
                    "name": "db-01",
                    "folder": "Prod/DB",
                    "cluster": "Prod",
                    "power_state": "poweredOn",
                    "guest_id": "rhel9_64Guest",
                    "guest_full_name": "Red Hat Enterprise Linux 9 (64-bit)",
                    "firmware": "efi",
                    "secure_boot": True,
                    "vtpm": True,
                    "num_cpu": 8,
                    "cores_per_socket": 4,
                    "memory_mb": 16384,
                    "cpu_hot_add": True,
                    "instance_uuid": "50123456-1234-1234-1234-123456789abc",
                    "bios_uuid": "42123456-1234-1234-1234-123456789abc",
                    "cbt": True,
                    "usb": "usb3",
                    "guest": {"hostname": "db-01.example.com", "ip_addresses": ["10.0.30.5"]},
                    "disks": [
                        {"capacity": "64MiB", "datastore": "vmfs-01", "controller": "pvscsi"},
                        {
                            "capacity_mb": 32,
                            "datastore": "vmfs-01",
                            "controller": "lsilogic",
                            "bus": 1,
                            "provisioning": "eagerZeroedThick",
                            "sharing": "sharingMultiWriter",
                            "disk_mode": "independent_persistent",
                        },
                        {
                            "capacity": "16MiB",
                            "datastore": "vmfs-01",
                            "controller": "lsilogic-sas",
                            "bus": 2,
                            "rdm": {"compatibility": "physicalMode", "device": "/vmfs/devices/disks/naa.600a0b8"},
                        },
                        {"capacity": "16MiB", "datastore": "nfs-01", "controller": "nvme"},
                        {"capacity": "8MiB", "datastore": "nfs-01", "controller": "sata"},
                    ],
                    "nics": [
                        {"network": "dvpg-app", "adapter": "vmxnet3", "mac": "00:50:56:01:02:03"},
                        {"network": "Prod-VLAN10", "adapter": "e1000e", "mac": "00:50:56:01:02:04", "connected": False},
                        {"network": "nsx-segment-1", "adapter": "e1000", "mac": "00:50:56:01:02:05"},
                        {"network": "dvpg-app", "adapter": "sriov", "physical_function": "0000:5e:00.0"},
                    ],
                    "pci_passthrough": [
                        {"id": "0000:3b:00.0", "device_name": "NVIDIA Tesla V100"},
                        {"vgpu": "grid_v100-8q"},
                    ],
                    "snapshots": ["before-upgrade", "after-upgrade"],
                },
                {
                    "name": "web-01",
                    "cluster": "Prod",
                    "power_state": "poweredOn",
                    "disks": [{"capacity": "1MiB", "datastore": "vmfs-01", "controller": "buslogic"}],
                    "nics": [{"network": "VM Network"}],
                },
                {"name": "solo-vm", "host": "esx-solo", "datastore": "nfs-01", "disks": [{"capacity": "1MiB"}]},
                {"name": "tmpl", "template": True, "disks": [{"capacity": "1MiB", "datastore": "vmfs-01"}]},
            ],
        }
    ]
}


class FakeInventory:
    """An in-memory sink and status reporter: the records as the watcher sent them."""

    def __init__(self) -> None:
        self.records: dict[KindAndId, Record] = {}
        self.statuses: list[ProviderStatus] = []
        self.reloads = 0
        self.applied: list[tuple[float, Sequence[KindAndRecord], Sequence[KindAndId]]] = []

    async def replace_all(self, records: Sequence[KindAndRecord]) -> None:
        self.reloads += 1
        self.records = {(kind, record.id): record for kind, record in records}

    async def apply(self, put: Sequence[KindAndRecord], deleted: Sequence[KindAndId]) -> None:
        self.applied.append((time.monotonic(), put, deleted))
        for kind, record in put:
            self.records[kind, record.id] = record
        for key in deleted:
            self.records.pop(key, None)

    async def report(self, status: ProviderStatus) -> None:
        self.statuses.append(status)

    def of_kind(self, kind: str) -> dict[str, Record]:
        return {record.name: record for (k, _), record in self.records.items() if k == kind}

    def vm(self, name: str) -> VmRecord | None:
        found = self.of_kind("vm").get(name)
        assert found is None or isinstance(found, VmRecord)
        return found

    def last_status(self) -> ProviderStatus | None:
        return self.statuses[-1] if self.statuses else None

    def has_phase(self, phase: ProviderPhase) -> bool:
        return any(status.phase == phase for status in self.statuses)


def provider(simulator: Vcsim, **trust: Any) -> ProviderSpec:
    return ProviderSpec(name="vc", type="vsphere", url=simulator.sdk_url, username=simulator.username, **trust)


def trusted(simulator: Vcsim) -> ProviderSpec:
    return provider(simulator, ca_bundle=simulator.certificate_path.read_text())


@asynccontextmanager
async def watching(spec: ProviderSpec, password: str, inventory: FakeInventory) -> AsyncIterator[asyncio.Event]:
    """Run a watcher for the block; stop it after (and check it stopped promptly)."""
    stop = asyncio.Event()
    settings = WatchSettings(retry_initial=0.2, retry_max=1.0, login_retry_min=1.0)
    task = asyncio.create_task(VsphereWatcher(spec, password, settings).run(inventory, inventory, stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 5.0)


async def until_ready(inventory: FakeInventory) -> None:
    await eventually(lambda: inventory.has_phase(ProviderPhase.READY), timeout=30, what="the ready status")


async def until_error(inventory: FakeInventory) -> ProviderStatus:
    await eventually(lambda: inventory.has_phase(ProviderPhase.ERROR), timeout=30, what="an error status")
    return next(status for status in inventory.statuses if status.phase == ProviderPhase.ERROR)


def connect(simulator: Vcsim) -> vim.ServiceInstance:
    host, port = simulator.host.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(simulator.certificate_path))
    return SmartConnect(host=host, port=int(port), user=simulator.username, pwd=simulator.password, sslContext=context)


def finish(task: vim.Task, timeout: float = 30.0) -> None:
    """Wait for a vSphere task to end (on a deadline), failing on its error."""
    wait_for(lambda: task.info.state in ("success", "error"), timeout=timeout, what=f"task {task.info.descriptionId}")
    if task.info.state == "error":
        raise AssertionError(f"task {task.info.descriptionId} failed: {task.info.error}")


def find(si: vim.ServiceInstance, kind: type, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return next(obj for obj in view.view if obj.name == name)
    finally:
        view.Destroy()


async def change_arrives(
    inventory: FakeInventory, action: Callable[[], None], arrived: Callable[[], bool], what: str
) -> float:
    """Run a blocking vSphere action (to its end); return the seconds from then until the
    sink shows the change."""
    await asyncio.to_thread(action)
    start = time.monotonic()
    await eventually(arrived, timeout=CHANGE_TIMEOUT, what=what, interval=0.01)
    return time.monotonic() - start


async def test_full_load_maps_every_vm_fact(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory(model=RICH_MODEL)
    inventory = FakeInventory()
    async with watching(trusted(simulator), simulator.password, inventory):
        await until_ready(inventory)

    ready = next(status for status in inventory.statuses if status.phase == ProviderPhase.READY)
    assert ready.counts["vm"] == 4
    assert ready.counts["host"] == 3
    assert ready.counts["datastore"] == 2
    assert ready.counts["datacenter"] == 1
    assert ready.counts["cluster"] == 1
    db = inventory.vm("db-01")
    assert db is not None
    assert db.id.startswith("vm-")
    assert db.path == "/DC0/vm/Prod/DB/db-01"
    assert (db.instance_uuid, db.bios_uuid) == (
        "50123456-1234-1234-1234-123456789abc",
        "42123456-1234-1234-1234-123456789abc",
    )
    assert (db.firmware, db.secure_boot, db.vtpm) == ("efi", True, True)
    assert (db.guest_id, db.guest_full_name) == ("rhel9_64Guest", "Red Hat Enterprise Linux 9 (64-bit)")
    assert (db.cpu_sockets, db.cores_per_socket, db.cpu_count, db.memory_mib) == (2, 4, 8, 16384)
    assert (db.cpu_hot_add, db.memory_hot_add, db.cbt_enabled, db.template) == (True, False, True, False)
    assert db.power_state == "poweredOn"
    assert (db.host_name, db.cluster_name, db.datacenter_name) == ("esx-01", "Prod", "DC0")
    assert db.host_id.startswith("host-")
    assert db.guest_hostname == "db-01.example.com"
    assert db.guest_ips == ("10.0.30.5",)
    assert db.snapshots == ("before-upgrade", "after-upgrade")
    assert db.usb_controllers == 1

    disks = {disk.label: disk for disk in db.disks}
    assert len(disks) == 5
    first = disks["Hard disk 1"]
    assert first.file_name == "[vmfs-01] db-01/db-01.vmdk"
    assert (first.datastore_name, first.capacity_bytes, first.thin) == ("vmfs-01", 64 << 20, True)
    assert (first.controller, first.controller_model, first.controller_bus, first.unit_number) == (
        "scsi",
        "pvscsi",
        0,
        0,
    )
    assert first.cbt
    assert first.change_id
    assert first.datastore_id == inventory.of_kind("datastore")["vmfs-01"].id
    shared = disks["Hard disk 2"]
    assert (shared.thin, shared.sharing, shared.disk_mode) == (False, "sharingMultiWriter", "independent_persistent")
    assert (shared.controller_model, shared.controller_bus) == ("lsilogic", 1)
    rdm = disks["Hard disk 3"]
    assert (rdm.rdm, rdm.rdm_compatibility, rdm.controller_model, rdm.cbt) == (
        True,
        "physicalMode",
        "lsilogic-sas",
        False,
    )
    assert (disks["Hard disk 4"].controller, disks["Hard disk 4"].datastore_name) == ("nvme", "nfs-01")
    assert (disks["Hard disk 5"].controller, disks["Hard disk 5"].controller_model) == ("sata", "ahci")
    assert {disk.datastore_name for disk in db.disks} == {"vmfs-01", "nfs-01"}

    networks = inventory.of_kind("network")
    nics = {nic.mac: nic for nic in db.nics}
    dvpg = nics["00:50:56:01:02:03"]
    assert (dvpg.adapter, dvpg.network_name, dvpg.network_id, dvpg.connected) == (
        "vmxnet3",
        "dvpg-app",
        networks["dvpg-app"].id,
        True,
    )
    standard = nics["00:50:56:01:02:04"]
    assert (standard.adapter, standard.network_id, standard.connected) == ("e1000e", networks["Prod-VLAN10"].id, False)
    opaque = nics["00:50:56:01:02:05"]
    assert (opaque.adapter, opaque.network_id, opaque.network_name) == (
        "e1000",
        networks["nsx-segment-1"].id,
        "nsx-segment-1",
    )
    sriov = next(nic for nic in db.nics if nic.adapter == "sriov")
    assert sriov.network_name == "dvpg-app"
    assert sriov.mac
    assert any("NVIDIA Tesla V100" in name and "0000:3b:00.0" in name for name in db.passthrough_devices)
    assert any("grid_v100-8q" in name for name in db.passthrough_devices)
    assert any(name.startswith("SR-IOV") and "0000:5e:00.0" in name for name in db.passthrough_devices)

    web = inventory.vm("web-01")
    assert web is not None
    assert (web.firmware, web.secure_boot, web.vtpm, web.usb_controllers, web.passthrough_devices) == (
        "bios",
        False,
        False,
        0,
        (),
    )
    assert web.disks[0].controller_model == "buslogic"
    assert web.nics[0].network_name == "VM Network"
    solo = inventory.vm("solo-vm")
    assert solo is not None
    assert (solo.host_name, solo.cluster_name, solo.path) == ("esx-solo", "", "/DC0/vm/solo-vm")
    template = inventory.vm("tmpl")
    assert template is not None
    assert (template.template, template.power_state) == (True, "poweredOff")

    dvpg_record = networks["dvpg-app"]
    assert isinstance(dvpg_record, NetworkRecord)
    assert (dvpg_record.kind, dvpg_record.switch_name, dvpg_record.datacenter_name) == ("distributed", "DSwitch", "DC0")
    assert isinstance(networks["nsx-segment-1"], NetworkRecord)
    assert networks["nsx-segment-1"].kind == "opaque"
    assert isinstance(networks["Prod-VLAN10"], NetworkRecord)
    assert networks["Prod-VLAN10"].kind == "standard"
    vmfs = inventory.of_kind("datastore")["vmfs-01"]
    assert isinstance(vmfs, DatastoreRecord)
    assert (vmfs.type, vmfs.capacity_bytes, vmfs.free_bytes) == ("VMFS", 10 << 40, 3 << 40)
    assert inventory.of_kind("datastore")["nfs-01"].type == "NFS"  # type: ignore[attr-defined]
    hosts = inventory.of_kind("host")
    assert isinstance(hosts["esx-02"], HostRecord)
    assert (hosts["esx-02"].maintenance_mode, hosts["esx-02"].cluster_name) == (True, "Prod")
    assert hosts["esx-01"].maintenance_mode is False  # type: ignore[attr-defined]
    assert inventory.of_kind("folder")["DB"].path == "/DC0/vm/Prod/DB"  # type: ignore[attr-defined]
    assert inventory.of_kind("cluster")["Prod"].datacenter_name == "DC0"  # type: ignore[attr-defined]


async def test_vm_changes_reach_the_sink_within_seconds(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory(model=RICH_MODEL)
    inventory = FakeInventory()
    si = await asyncio.to_thread(connect, simulator)
    try:
        async with watching(trusted(simulator), simulator.password, inventory):
            await until_ready(inventory)
            content = si.RetrieveContent()
            datacenter = content.rootFolder.childEntity[0]
            cluster = await asyncio.to_thread(find, si, vim.ClusterComputeResource, "Prod")
            config = vim.vm.ConfigSpec(
                name="new-vm",
                guestId="otherGuest64",
                numCPUs=1,
                memoryMB=256,
                files=vim.vm.FileInfo(vmPathName="[vmfs-01]"),
            )
            latency = {}
            latency["added"] = await change_arrives(
                inventory,
                lambda: finish(datacenter.vmFolder.CreateVM_Task(config=config, pool=cluster.resourcePool)),
                lambda: inventory.vm("new-vm") is not None,
                "the new VM",
            )
            added = inventory.vm("new-vm")
            assert added is not None
            vm = await asyncio.to_thread(find, si, vim.VirtualMachine, "new-vm")

            latency["renamed"] = await change_arrives(
                inventory,
                lambda: finish(vm.Rename_Task("renamed-vm")),
                lambda: inventory.vm("renamed-vm") is not None and inventory.vm("new-vm") is None,
                "the renamed VM",
            )

            controller = vim.vm.device.ParaVirtualSCSIController(key=-1, busNumber=0, sharedBus="noSharing")
            disk = vim.vm.device.VirtualDisk(
                key=-2,
                controllerKey=-1,
                unitNumber=0,
                capacityInKB=2048,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                    fileName="[nfs-01]", diskMode="persistent", thinProvisioned=True
                ),
            )
            add = vim.vm.device.VirtualDeviceSpec
            reconfigure = vim.vm.ConfigSpec(
                deviceChange=[
                    add(operation="add", device=controller),
                    add(operation="add", fileOperation="create", device=disk),
                ]
            )

            def has_new_disk() -> bool:
                record = inventory.vm("renamed-vm")
                return record is not None and [(d.datastore_name, d.capacity_bytes) for d in record.disks] == [
                    ("nfs-01", 2 << 20)
                ]

            latency["disk added"] = await change_arrives(
                inventory, lambda: finish(vm.ReconfigVM_Task(reconfigure)), has_new_disk, "the added disk"
            )
            web = await asyncio.to_thread(find, si, vim.VirtualMachine, "web-01")
            latency["powered off"] = await change_arrives(
                inventory,
                lambda: finish(web.PowerOffVM_Task()),
                lambda: getattr(inventory.vm("web-01"), "power_state", "") == "poweredOff",
                "web-01 powered off",
            )
            latency["deleted"] = await change_arrives(
                inventory,
                lambda: finish(vm.Destroy_Task()),
                lambda: ("vm", added.id) not in inventory.records,
                "the deleted VM gone",
            )
            await eventually(
                lambda: (inventory.last_status() or ProviderStatus()).counts.get("vm") == 4,
                timeout=CHANGE_TIMEOUT,
                what="the counts back at 4 VMs",
            )
    finally:
        await asyncio.to_thread(Disconnect, si)
    assert inventory.reloads == 1
    assert max(latency.values()) < 2.0, latency


async def test_wrong_password_is_invalid_login_and_never_shown(
    vcsim_factory: VcsimFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    simulator = vcsim_factory()
    wrong = "Wr0ng-Passw0rd-7f3a9c"
    inventory = FakeInventory()
    async with watching(trusted(simulator), wrong, inventory):
        error = await until_error(inventory)
    assert error.reason == "invalid_login"
    assert simulator.username in error.message
    assert inventory.statuses[0].phase == ProviderPhase.CONNECTING
    for status in inventory.statuses:
        assert wrong not in status.message + status.reason
    assert wrong not in caplog.text
    assert "invalid_login" in caplog.text
    assert wrong not in repr(VsphereWatcher(trusted(simulator), wrong))


async def test_wrong_thumbprint_is_refused_with_both_thumbprints(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    pinned = ":".join(["AB"] * 32)
    inventory = FakeInventory()
    async with watching(provider(simulator, thumbprint=pinned), simulator.password, inventory):
        error = await until_error(inventory)
    assert error.reason == "thumbprint_mismatch"
    assert pinned in error.message
    assert simulator.thumbprint_sha256 in error.message


async def test_pinned_thumbprint_connects(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    pinned = simulator.thumbprint_sha256.replace(":", "").lower()
    inventory = FakeInventory()
    async with watching(provider(simulator, thumbprint=pinned), simulator.password, inventory):
        await until_ready(inventory)
    assert inventory.vm("vm-efi") is not None


async def test_certificate_without_trust_is_untrusted(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    inventory = FakeInventory()
    async with watching(provider(simulator), simulator.password, inventory):
        error = await until_error(inventory)
    assert error.reason == "certificate_untrusted"
    assert "ca_bundle" in error.message
    assert simulator.thumbprint_sha256 in error.message


async def test_insecure_connects_without_verification(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    inventory = FakeInventory()
    async with watching(provider(simulator, insecure=True), simulator.password, inventory):
        await until_ready(inventory)


async def test_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = ProviderSpec(name="vc", type="vsphere", url=f"https://127.0.0.1:{port}/sdk", username="u", insecure=True)
    inventory = FakeInventory()
    async with watching(spec, "secret", inventory):
        error = await until_error(inventory)
    assert error.reason == "unreachable"
    assert f"127.0.0.1:{port}" in error.message


async def test_a_port_without_tls_is_reported(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    plain = simulator.control_url.replace("http://", "https://")
    spec = ProviderSpec(name="vc", type="vsphere", url=plain, username="u", insecure=True)
    inventory = FakeInventory()
    async with watching(spec, "secret", inventory):
        error = await until_error(inventory)
    assert error.reason == "tls_failed"


async def test_an_https_server_that_is_not_vsphere_is_not_vcenter(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    spec = trusted(simulator)
    spec = ProviderSpec(
        name=spec.name,
        type="vsphere",
        url=spec.url.replace("/sdk", "/nothing-here"),
        username=spec.username,
        ca_bundle=spec.ca_bundle,
    )
    inventory = FakeInventory()
    async with watching(spec, simulator.password, inventory):
        error = await until_error(inventory)
    assert error.reason == "not_vcenter"
    assert simulator.host in error.message


async def test_lost_session_logs_in_again_and_reloads(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    inventory = FakeInventory()
    async with watching(trusted(simulator), simulator.password, inventory):
        await until_ready(inventory)
        await inject(simulator, {"method": "WaitForUpdatesEx", "fault": "NotAuthenticated", "times": 1})
        await eventually(lambda: inventory.reloads == 2, timeout=10, what="a full reload")
        await eventually(
            lambda: (inventory.last_status() or ProviderStatus()).phase == ProviderPhase.READY,
            timeout=10,
            what="ready again",
        )
    assert not inventory.has_phase(ProviderPhase.ERROR)
    assert inventory.vm("vm-bios") is not None


async def inject(simulator: Vcsim, rule: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as control:
        (await control.post(f"{simulator.control_url}/faults", json=rule)).raise_for_status()


async def test_a_dropped_connection_is_reported_and_recovered(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    inventory = FakeInventory()
    async with watching(trusted(simulator), simulator.password, inventory):
        await until_ready(inventory)
        await inject(simulator, {"method": "WaitForUpdatesEx", "drop": True, "times": 1})
        error = await until_error(inventory)
        assert error.reason == "connection_lost"
        assert simulator.host in error.message
        await eventually(
            lambda: (inventory.last_status() or ProviderStatus()).phase == ProviderPhase.READY,
            timeout=10,
            what="ready again",
        )
    assert inventory.reloads == 2


async def test_a_user_without_read_access_is_told_so(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    await inject(simulator, {"method": "RetrievePropertiesEx", "fault": "NoPermission"})
    inventory = FakeInventory()
    async with watching(trusted(simulator), simulator.password, inventory):
        error = await until_error(inventory)
    assert error.reason == "no_permission"
    assert "Read-only" in error.message


async def test_stops_promptly_while_following_changes(vcsim_factory: VcsimFactory) -> None:
    simulator = vcsim_factory()
    inventory = FakeInventory()
    stop = asyncio.Event()
    settings = WatchSettings(max_wait_seconds=30)  # the long-poll must be interrupted, not waited out
    task = asyncio.create_task(
        VsphereWatcher(trusted(simulator), simulator.password, settings).run(inventory, inventory, stop)
    )
    await until_ready(inventory)
    si = await asyncio.to_thread(connect, simulator)
    try:  # a change that arrives shows the watcher is long-polling the change feed
        vm = await asyncio.to_thread(find, si, vim.VirtualMachine, "vm-bios")
        await change_arrives(
            inventory,
            lambda: finish(vm.PowerOffVM_Task()),
            lambda: getattr(inventory.vm("vm-bios"), "power_state", "") == "poweredOff",
            "vm-bios powered off",
        )
    finally:
        await asyncio.to_thread(Disconnect, si)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 5.0)
    assert time.monotonic() - started < 1.0


async def test_stops_promptly_while_backing_off() -> None:
    spec = ProviderSpec(name="vc", type="vsphere", url="https://127.0.0.1:1/sdk", username="u", insecure=True)
    inventory = FakeInventory()
    stop = asyncio.Event()
    settings = WatchSettings(retry_initial=60.0)
    task = asyncio.create_task(VsphereWatcher(spec, "secret", settings).run(inventory, inventory, stop))
    await until_error(inventory)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 5.0)
    assert time.monotonic() - started < 1.0
