"""Stage 3 end to end: a cold migration of four VMs from the simulated vCenter, with the
four services as separate processes on real NATS, driven through the ``ferry`` CLI.

Once to the real kube-apiserver (the test plays the node: it serves each sink pod's
volumes with qemu-nbd and writes the pod's status) and once to a local directory. In
both, one VM is cancelled mid-copy and must end Canceled with its objects removed while
the other three succeed with byte-identical disks.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ferry_peers.nats_server import NatsServer
from ferry_testpeers.kube import KubeControlPlane
from ferry_testpeers.models import CANCELED_VM, migration_model
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.sink_node import SinkNode
from ferry_testpeers.waiting import wait_for

from .harness import (
    EventLog,
    Stack,
    key_material,
    nats_stream_dump,
    running_stack,
    source_disks,
    stored_events,
    target_namespace,
)

pytestmark = [pytest.mark.e2e, pytest.mark.nats, pytest.mark.vsphere, pytest.mark.kube]

NAMESPACES = {"kubernetes": "ferry-migrate", "local": "ferry-migrate-local"}
"""One target namespace per variant: the local variant checks its manifests against the apiserver too."""
MIGRATED = ("Finance DB (prod)", "web-01", "app-02")
SLOW_READ_MS = 4000
"""Delay of every datastore read of the cancelled VM's disk, so it is still copying when cancelled."""


@dataclass
class Target:
    """Where a test migrates to, and how it reads the result back."""

    kind: str
    namespace: str
    provider_args: list[str]
    storage_pairs: list[str]
    disk_bytes: Callable[[dict[str, Any], dict[str, Any], int], bytes]
    """(migration VM view, VirtualMachine object, disk index) → the target disk's bytes."""
    virtual_machine: Callable[[dict[str, Any]], dict[str, Any] | None]
    """migration VM view → the VirtualMachine object as created (or as written to YAML)."""
    leftovers: Callable[[str], list[str]]
    """target VM name → what is left of it on the target."""


@pytest.fixture(scope="module")
def cluster(kube: KubeControlPlane) -> KubeControlPlane:
    """The target namespaces with a StorageClass and a Multus network."""
    api = kube.api_client()
    for namespace in NAMESPACES.values():
        target_namespace(api, namespace)
    return kube


@pytest.fixture
def stack(nats_server: NatsServer, vcsim_factory: VcsimFactory, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(nats_server, vcsim_factory(model=migration_model()), tmp_path) as stack:
        yield stack


def kubernetes_target(cluster: KubeControlPlane, node: SinkNode) -> Target:
    namespace = NAMESPACES["kubernetes"]
    objects = client.CustomObjectsApi(cluster.api_client())
    core = client.CoreV1Api(cluster.api_client())
    networking = client.NetworkingV1Api(cluster.api_client())

    def virtual_machine(vm: dict[str, Any]) -> dict[str, Any] | None:
        try:
            found = objects.get_namespaced_custom_object(
                "kubevirt.io", "v1", namespace, "virtualmachines", vm["target_name"]
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return cast(dict[str, Any], found)

    def disk_bytes(vm: dict[str, Any], manifest: dict[str, Any], index: int) -> bytes:
        volume = manifest["spec"]["template"]["spec"]["volumes"][index]
        claim = volume.get("persistentVolumeClaim", {}).get("claimName") or volume["dataVolume"]["name"]
        return node.disk_path(namespace, claim).read_bytes()

    def leftovers(name: str) -> list[str]:
        found = [f"pvc/{c.metadata.name}" for c in core.list_namespaced_persistent_volume_claim(namespace).items
                 if c.metadata.name.startswith(name)]  # fmt: skip
        found += [f"pod/{p.metadata.name}" for p in core.list_namespaced_pod(namespace).items
                  if p.metadata.name.startswith(name)]  # fmt: skip
        found += [f"secret/{x.metadata.name}" for x in core.list_namespaced_secret(namespace).items
                  if x.metadata.name.startswith(name)]  # fmt: skip
        found += [f"networkpolicy/{x.metadata.name}" for x in networking.list_namespaced_network_policy(namespace).items
                  if x.metadata.name.startswith(name)]  # fmt: skip
        for plural in ("virtualmachines", "datavolumes"):
            group, version = ("kubevirt.io", "v1") if plural == "virtualmachines" else ("cdi.kubevirt.io", "v1beta1")
            items = objects.list_namespaced_custom_object(group, version, namespace, plural)["items"]
            found += [f"{plural}/{o['metadata']['name']}" for o in items if o["metadata"]["name"].startswith(name)]
        return found

    return Target(
        kind="kubernetes",
        namespace=namespace,
        provider_args=["--type", "kubernetes", "--kubeconfig", str(cluster.kubeconfig)],
        storage_pairs=["LocalDS_0=standard:Block:ReadWriteOnce", "LocalDS_1=standard:Filesystem:ReadWriteOnce"],
        disk_bytes=disk_bytes,
        virtual_machine=virtual_machine,
        leftovers=leftovers,
    )


def local_target(directory: Path, cluster: KubeControlPlane) -> Target:
    namespace = NAMESPACES["local"]
    objects = client.CustomObjectsApi(cluster.api_client())

    def virtual_machine(vm: dict[str, Any]) -> dict[str, Any] | None:
        path = Path(vm["location"]) / "virtualmachine.yaml"
        if not vm["location"] or not path.exists():
            return None
        manifest: dict[str, Any] = yaml.safe_load(path.read_text())
        # The apiserver checks the written manifest against the KubeVirt CRD without storing it.
        objects.create_namespaced_custom_object(
            "kubevirt.io", "v1", namespace, "virtualmachines", manifest, dry_run="All", field_validation="Strict"
        )
        return manifest

    def disk_bytes(vm: dict[str, Any], manifest: dict[str, Any], index: int) -> bytes:
        return (Path(vm["location"]) / f"disk-{index}.raw").read_bytes()

    def leftovers(name: str) -> list[str]:
        return [str(path) for path in directory.rglob(f"{name}*")]

    return Target(
        kind="local",
        namespace=namespace,
        provider_args=["--type", "local", "--path", str(directory)],
        storage_pairs=["LocalDS_0=standard", "LocalDS_1=standard"],
        disk_bytes=disk_bytes,
        virtual_machine=virtual_machine,
        leftovers=leftovers,
    )


def slow_down_disk_reads(stack: Stack, vm_name: str) -> None:
    rule = {"path": f"{vm_name}-flat.vmdk", "delay_ms": SLOW_READ_MS}
    httpx.post(f"{stack.vcsim.control_url}/faults", json=rule, timeout=10).raise_for_status()


def copying(events: EventLog, vm_name: str) -> bool | None:
    """True once the VM's disk copy has made progress (seen on the planner's SSE stream)."""
    for event in events.of_kind("migration_vm"):
        vm = event["vm"]
        if vm["vm_name"] == vm_name and vm["phase"] == "CopyDisks" and any(d["bytes_done"] > 0 for d in vm["disks"]):
            return True
    return None


@pytest.mark.parametrize("target_kind", ["kubernetes", "local"])
def test_cold_migration_of_four_vms_with_one_cancelled(
    stack: Stack, cluster: KubeControlPlane, tmp_path: Path, target_kind: str
) -> None:
    started = time.monotonic()
    if target_kind == "kubernetes":
        node = SinkNode(cluster.api_client(), tmp_path / "node")
        node.start()
        target = kubernetes_target(cluster, node)
    else:
        node = None
        target = local_target(tmp_path / "local-target", cluster)
    try:
        run_migration(stack, target, cluster)
    finally:
        if node is not None:
            node.stop()
    print(f"\n{target_kind}: e2e migration test body took {time.monotonic() - started:.1f} s")


def run_migration(stack: Stack, target: Target, cluster: KubeControlPlane) -> None:
    events = EventLog(f"{stack.planner.http_url}/api/v1/events", stack.security.api_headers())
    assert stack.add_vcenter("vcenter", password=stack.vcsim.password,
                             thumbprint=stack.vcsim.thumbprint_sha256).returncode == 0  # fmt: skip
    stack.ok("provider", "add", "target", *target.provider_args)
    stack.wait_provider("vcenter", "ready")
    stack.wait_provider("target", "ready")

    stack.ok("map", "network", "create", "net", "--source", "vcenter", "--target", "target",
             "--pair", "VM Network=pod", "--pair", f"DC0_DVPG0=multus:{target.namespace}/vlan-100")  # fmt: skip
    storage = [arg for pair in target.storage_pairs for arg in ("--pair", pair)]
    stack.ok("map", "storage", "create", "sto", "--source", "vcenter", "--target", "target", *storage)
    vm_args = [arg for name in (*MIGRATED, CANCELED_VM) for arg in ("--vm", name)]
    plan = json.loads(stack.ok("plan", "create", "p1", "--source", "vcenter", "--target", "target",
                               "--network-map", "net", "--storage-map", "sto", "--namespace", target.namespace,
                               *vm_args, "--output", "json"))  # fmt: skip
    assert plan["status"]["ready"] is True, plan["status"]

    slow_down_disk_reads(stack, CANCELED_VM)
    migrate = subprocess.Popen(
        [sys.executable, "-c", "from ferry_cli.main import app; app()", "migrate", "p1", "--output", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "FERRY_PLANNER_URL": stack.planner.http_url,
             "FERRY_INVENTORY_URL": stack.inventory.http_url, **stack.security.client_env()},
    )  # fmt: skip
    try:
        wait_for(lambda: copying(events, CANCELED_VM), timeout=120, what=f"{CANCELED_VM} to be copying")
        stack.ok("migration", "cancel", "p1-1", "--vm", CANCELED_VM)
        out, err = migrate.communicate(timeout=180)
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.communicate()
    stack.responses += [out, err]
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert lines, f"ferry migrate printed nothing; stderr: {err}"
    final = lines[-1]
    assert migrate.returncode != 0, "a migration with a cancelled VM does not exit 0"

    migration = stack.get(stack.planner, "/migrations/p1-1")
    assert final["name"] == migration["name"] == "p1-1"
    phases = {vm["vm_name"]: vm for vm in migration["vms"]}
    assert {name: vm["phase"] for name, vm in phases.items()} == {
        **dict.fromkeys(MIGRATED, "Completed"),
        CANCELED_VM: "Canceled",
    }, {name: (vm["phase"], vm["reason"]) for name, vm in phases.items()}
    assert migration["phase"] == "Canceled"
    assert migration["counts"]["succeeded"] == 3
    assert migration["counts"]["canceled"] == 1

    for name in MIGRATED:
        check_migrated_vm(stack, target, phases[name])
    check_progress_was_reported(stack, events, phases)
    check_cancelled_vm_left_nothing(target, phases[CANCELED_VM])
    check_source_vms_are_off(stack)
    check_no_secret_leaked(stack, cluster)


def check_migrated_vm(stack: Stack, target: Target, vm: dict[str, Any]) -> None:
    pipeline = [step["name"] for step in vm["pipeline"]]
    assert pipeline == ["Started", "StorePowerState", "PowerOffSource", "WaitForPowerOff", "CreateDataVolumes",
                        "CopyDisks", "CreateVM", "Completed"][: len(pipeline)]  # fmt: skip
    assert "CopyDisks" in pipeline
    assert all(step["started_at"] and step["completed_at"] for step in vm["pipeline"] if step["name"] != "Completed")
    assert vm["location"]
    manifest = target.virtual_machine(vm)
    assert manifest is not None, f"no VirtualMachine for {vm['vm_name']}"
    metadata = manifest["metadata"]
    tags = [*metadata.get("labels", {}).values(), *metadata.get("annotations", {}).values()]
    assert any(vm["vm_id"] in str(value) for value in tags), "the VirtualMachine names its source VM"

    sources = {disk["key"]: disk for disk in source_disks(stack.vcsim, vm["vm_name"])}
    assert sorted(d["key"] for d in vm["disks"]) == sorted(sources)
    for index, disk in enumerate(vm["disks"]):  # the migration's disk order is the target VM's
        source = sources[disk["key"]]
        assert disk["bytes_total"] == source["capacity"]
        expected = Path(source["path_on_disk"]).read_bytes()
        actual = target.disk_bytes(vm, manifest, index)
        assert len(actual) >= len(expected)
        assert actual[: len(expected)] == expected, f"{vm['vm_name']} disk {index} differs from the source"
        assert not any(actual[len(expected) :]), "bytes past the source capacity are zero"

    spec = manifest["spec"]["template"]["spec"]
    domain = spec["domain"]
    interfaces = domain["devices"]["interfaces"]
    networks = {network["name"]: network for network in spec["networks"]}
    if vm["vm_name"] == "Finance DB (prod)":
        assert manifest["metadata"]["name"] == vm["target_name"] != vm["vm_name"]
        assert domain["cpu"]["sockets"] * domain["cpu"]["cores"] == 4
        assert domain["cpu"]["cores"] == 2
        assert domain["memory"]["guest"] in ("4Gi", "4096Mi")
        assert domain["firmware"]["bootloader"]["efi"]["secureBoot"] is True
        assert domain["features"]["smm"]["enabled"] is True
        assert domain["devices"]["tpm"].get("persistent") is True
        assert len(domain["devices"]["disks"]) == 3
        assert manifest["spec"].get("runStrategy") == "Always" or manifest["spec"].get("running") is True
        assert [i["macAddress"] for i in interfaces] == ["00:50:56:00:10:11", "00:50:56:00:10:12"]
        assert "masquerade" in interfaces[0]
        assert "bridge" in interfaces[1]
        assert "pod" in networks[interfaces[0]["name"]]
        assert networks[interfaces[1]["name"]]["multus"]["networkName"] == f"{target.namespace}/vlan-100"
    if vm["vm_name"] == "web-01":
        assert "efi" not in domain.get("firmware", {}).get("bootloader", {})
        assert manifest["spec"].get("runStrategy") in ("Halted", None) and not manifest["spec"].get("running")
        assert [i["macAddress"] for i in interfaces] == ["00:50:56:00:10:21"]


def check_progress_was_reported(stack: Stack, events: EventLog, phases: dict[str, dict[str, Any]]) -> None:
    """Every disk's progress reached NATS and the SSE stream, with the bytes read apart from the logical size."""
    progress = [e for e in stored_events(stack.nats) if e["type"] == "ferry.transfer.disk_copy_progress.v1"]
    on_nats = {(e["vm_id"], e["disk_key"]) for e in progress if e["bytes_done"] > 0}
    assert all(e["bytes_read"] is not None and e["bytes_to_read"] is not None for e in progress)
    on_sse = {(e["vm"]["vm_id"], disk["key"]) for e in events.of_kind("migration_vm")
              for disk in e["vm"]["disks"] if disk["bytes_done"] > 0}  # fmt: skip
    for name in MIGRATED:
        vm = phases[name]
        for disk in vm["disks"]:
            assert (vm["vm_id"], disk["key"]) in on_nats, f"no progress event on NATS for {name} disk {disk['key']}"
            assert (vm["vm_id"], disk["key"]) in on_sse, f"no progress on the SSE stream for {name} disk {disk['key']}"
            assert disk["completed"] and disk["bytes_done"] == disk["bytes_total"]
            assert disk["bytes_to_read"] is not None, "the transfer said how much it had to read"
            assert 0 <= disk["bytes_read"] <= disk["bytes_total"], "bytes read are counted once, holes not at all"
    seen_phases = {e["vm"]["phase"] for e in events.of_kind("migration_vm")}
    assert {"CopyDisks", "CreateVM", "Completed", "Canceling", "Canceled"} <= seen_phases


def check_cancelled_vm_left_nothing(target: Target, vm: dict[str, Any]) -> None:
    assert not any(disk["completed"] for disk in vm["disks"]), "the cancelled VM was still copying"
    assert target.virtual_machine(vm) is None
    wait_for(lambda: not target.leftovers(vm["target_name"]) or None, timeout=30,
             what=f"{vm['target_name']}'s target objects to be removed")  # fmt: skip


def check_source_vms_are_off(stack: Stack) -> None:
    found = {vm["name"]: vm["power_state"] for vm in httpx.get(f"{stack.vcsim.control_url}/vms", timeout=10).json()}
    for name in MIGRATED:
        assert found[name] == "poweredOff", f"{name} was not powered off for the cold migration"


def nbd_key_material(security: Path) -> list[str]:
    """Distinctive lines of the NBD CA's and the transfer's private keys (never on the bus or in a log)."""
    keys = [security / "nbd-ca" / "ca-key.pem", security / "nbd-transfer" / "client-key.pem"]
    return [line for key in keys for line in key.read_text().splitlines()[1:3] if not line.startswith("-----")]


def check_no_secret_leaked(stack: Stack, cluster: KubeControlPlane) -> None:
    secrets = [stack.vcsim.password, *key_material(cluster.kubeconfig), *nbd_key_material(stack.security.directory)]
    texts = [*stack.responses, *stack.logs(), nats_stream_dump(stack.nats)]
    for secret in secrets:
        for text in texts:
            assert secret not in text
