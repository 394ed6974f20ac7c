"""Stages 1 and 2 end to end: providers, live inventory, maps and plans, with the
inventory and planner services as separate processes on real NATS, the simulator and
the real kube-apiserver, driven through the ``ferry`` CLI and the HTTP APIs."""

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from ferry_peers.nats_server import NatsServer
from ferry_testpeers.kube import KubeControlPlane
from ferry_testpeers.models import TAKEN_MAC, planning_model
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import wait_for

from .harness import EventLog, Stack, key_material, nats_stream_dump, running_stack, target_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.nats, pytest.mark.vsphere, pytest.mark.kube]

NAMESPACE = "ferry-plans"


@pytest.fixture(scope="module")
def target(kube: KubeControlPlane) -> KubeControlPlane:
    """The target cluster with a namespace, a StorageClass, a NAD and two VMs in the way."""
    api = kube.api_client()
    target_namespace(api, NAMESPACE)
    objects = client.CustomObjectsApi(api)
    for name, mac in (("exists-01", "02:00:00:00:00:01"), ("occupant", TAKEN_MAC)):
        metadata = {"name": name, "namespace": NAMESPACE}
        vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": metadata,
              "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {
                  "interfaces": [{"name": "nic0", "masquerade": {}, "macAddress": mac}]}},
                  "networks": [{"name": "nic0", "pod": {}}]}}}}  # fmt: skip
        objects.create_namespaced_custom_object("kubevirt.io", "v1", NAMESPACE, "virtualmachines", vm)
    return kube


@pytest.fixture
def stack(
    nats_server: NatsServer, vcsim_factory: VcsimFactory, target: KubeControlPlane, tmp_path: Path
) -> Iterator[Stack]:
    with running_stack(nats_server, vcsim_factory(model=planning_model()), tmp_path, ("inventory", "planner")) as stack:
        yield stack


def test_wrong_password_and_wrong_thumbprint_each_say_what_is_wrong_and_an_update_fixes_them(stack: Stack) -> None:
    added = stack.add_vcenter("badpass", password="wrong-" + stack.vcsim.password,
                              thumbprint=stack.vcsim.thumbprint_sha256)  # fmt: skip
    assert added.returncode == 1, "add waits for the provider and fails with its error"
    assert "provider badpass: error:" in added.stderr and "(invalid_login)" in added.stderr
    assert "ferry provider update NAME --username USER --password-stdin" in added.stderr
    status = stack.provider("badpass")["status"]
    assert (status["phase"], status["reason"]) == ("error", "invalid_login")
    listing = stack.cli("inventory", "vms", "badpass")
    assert listing.returncode == 1, listing.stdout
    said = "".join(listing.stderr.split())
    assert "".join(f"provider 'badpass' is in error (invalid_login): {status['message'].rstrip('.')}".split()) in said
    assert "`ferryprovidershowbadpass`" in said
    assert listing.stderr.strip().count("\n") == 0, "one line"
    assert "0 VMs" not in listing.stdout
    answer = httpx.get(f"{stack.inventory.http_url}/api/v1/providers/badpass/vms", headers=stack.security.api_headers())
    assert (answer.status_code, answer.json()["reason"]) == (409, "provider_not_ready")

    fixed = stack.cli("provider", "update", "badpass", "--password-stdin", stdin=stack.vcsim.password + "\n")
    assert fixed.returncode == 0, fixed.stderr
    assert "provider badpass: ready" in fixed.stderr
    assert stack.provider("badpass")["generation"] == 2
    assert stack.cli("inventory", "vms", "badpass").returncode == 0, "ready again: the VMs are listed"

    bad_print = ":".join(["AB"] * 32)
    added = stack.add_vcenter("badprint", password=stack.vcsim.password, thumbprint=bad_print)
    assert added.returncode == 1 and "(thumbprint_mismatch)" in added.stderr
    assert f"ferry provider update NAME --thumbprint {stack.vcsim.thumbprint_sha256} --password" in added.stderr
    typed = stack.cli("provider", "update", "badprint", "--type", "kubernetes")
    assert typed.returncode == 2, "no such option: the type is not changeable"
    url = f"{stack.planner.http_url}/api/v1/providers/badprint"
    response = httpx.patch(url, json={"type": "kubernetes"}, headers=stack.security.api_headers())
    assert response.status_code == 422 and "type cannot be changed" in response.json()["message"]
    unproven = stack.cli("provider", "update", "badprint", "--thumbprint", stack.vcsim.thumbprint_sha256)
    assert unproven.returncode == 1 and "give the password again with a new thumbprint" in unproven.stderr
    assert stack.provider("badprint")["generation"] == 1, "nothing stored"
    fixed = stack.cli("provider", "update", "badprint", "--thumbprint", stack.vcsim.thumbprint_sha256, "-o", "json",
                      "--password-stdin", stdin=stack.vcsim.password + "\n")  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["status"]["phase"] == "ready"
    assert stack.cli("provider", "add", "later", "--type", "vsphere", "--url", stack.vcsim.sdk_url, "--username", "x",
                     "--insecure", "--password-stdin", "--no-wait", stdin="nope\n").returncode == 0  # fmt: skip
    for secret in ("wrong-" + stack.vcsim.password, stack.vcsim.password):
        for text in (*stack.responses, *stack.logs(), nats_stream_dump(stack.nats)):
            assert secret not in text


def test_malformed_requests_get_a_reason_and_a_message(stack: Stack) -> None:
    url = f"{stack.planner.http_url}/api/v1/providers"
    response = httpx.post(url, json={"name": "x", "type": "nope"}, headers=stack.security.api_headers())
    assert response.status_code == 422
    assert response.json()["reason"] == "malformed_request"
    result = stack.cli("provider", "add", "Bad_Name", "--type", "local", "--path", "/tmp")
    assert result.returncode == 1
    assert "DNS-1123" in result.stderr
    result = stack.cli("plan", "show", "missing")
    assert result.returncode == 1
    assert "plan 'missing' does not exist" in result.stderr


def test_a_local_target_outside_the_allowed_roots_and_a_plan_into_namespace_dotdot_are_refused(
    stack: Stack, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"  # the launcher allows tmp_path only
    (tmp_path / "escape").symlink_to(outside, target_is_directory=True)
    providers = f"{stack.planner.http_url}/api/v1/providers"
    with httpx.Client(headers=stack.security.api_headers(), timeout=30) as http:
        for path in (str(outside), str(tmp_path / "escape"), "relative/dir"):
            response = http.post(providers, json={"name": "disk", "type": "local", "path": path})
            assert response.status_code == 422, response.text
            assert set(response.json()) >= {"reason", "message"}
            assert "FERRY_LOCAL_TARGET_ROOTS" in response.json()["message"]
        result = stack.cli("provider", "add", "disk", "--type", "local", "--path", str(outside))
        assert result.returncode == 1
        said = "".join(result.stderr.split())  # the CLI wraps long lines
        assert (
            "".join(f"is outside the allowed directories FERRY_LOCAL_TARGET_ROOTS={tmp_path.resolve()}".split()) in said
        )
        assert not outside.exists()
        assert http.get(f"{providers}/disk").status_code == 404

        assert (
            stack.cli("provider", "add", "disk", "--type", "local", "--path", str(tmp_path / "target")).returncode == 0
        )
        plan = {"name": "escape", "source_provider": "disk", "target_provider": "disk", "network_map": "n",
                "storage_map": "s", "target_namespace": "../x", "vms": [{"ref": "web-01"}]}  # fmt: skip
        response = http.post(f"{stack.planner.http_url}/api/v1/plans", json=plan)
        assert response.status_code == 422, response.text
        assert "target_namespace" in response.json()["message"]


def test_a_plan_into_a_local_target_is_not_ready_over_what_is_already_there(stack: Stack, tmp_path: Path) -> None:
    root = tmp_path / "target"
    interfaces = [{"name": "nic-0", "macAddress": "00:50:56:00:00:11"}]  # Finance DB's first NIC
    manifest = {"spec": {"template": {"spec": {"domain": {"devices": {"interfaces": interfaces}}}}}}
    for name in ("web-01", "earlier"):
        (root / "apps" / name).mkdir(parents=True)
        (root / "apps" / name / "virtualmachine.yaml").write_text(json.dumps(manifest if name == "earlier" else {}))
    assert stack.add_vcenter("vcenter", password=stack.vcsim.password,
                             thumbprint=stack.vcsim.thumbprint_sha256).returncode == 0  # fmt: skip
    stack.ok("provider", "add", "disk", "--type", "local", "--path", str(root))
    stack.wait_provider("vcenter", "ready")
    stack.wait_provider("disk", "ready")
    stack.ok("map", "network", "create", "net", "--source", "vcenter", "--target", "disk",
             "--pair", "VM Network=pod", "--pair", "DC0_DVPG0=pod")  # fmt: skip
    stack.ok("map", "storage", "create", "sto", "--source", "vcenter", "--target", "disk",
             "--pair", "LocalDS_0=standard", "--pair", "LocalDS_1=standard")  # fmt: skip
    vms = ("web-01", "Finance DB (prod)", "rdm-01:same-name", "exists-01:same-name")
    created = stack.cli("plan", "create", "local", "--source", "vcenter", "--target", "disk", "--network-map", "net",
                        "--storage-map", "sto", "--namespace", "apps", *[a for vm in vms for a in ("--vm", vm)],
                        "--output", "json")  # fmt: skip
    assert created.returncode == 1, created.stderr
    plan = json.loads(created.stdout)
    concerns = {vm["ref"]: {c["id"] for c in vm["concerns"]} for vm in plan["status"]["vms"]}
    assert "vm.target.exists" in concerns["web-01"]
    assert "vm.target.mac_conflict" in concerns["Finance DB (prod)"]
    assert "vm.target_name.duplicate" in concerns["rdm-01"]
    assert "vm.target_name.duplicate" in concerns["exists-01"]
    assert "DuplicateTargetName" in {c["type"] for c in plan["status"]["conditions"]}
    said = " ".join(created.stderr.split())
    assert "plan 'local' is stored but not Ready" in said and "web-01: VM already exists on the target" in said


def vsphere(stack: Stack) -> vim.ServiceInstance:
    host, port = stack.vcsim.host.split(":")
    context = ssl.create_default_context(cafile=str(stack.vcsim.certificate_path))
    return SmartConnect(host=host, port=int(port), user=stack.vcsim.username, pwd=stack.vcsim.password,
                        sslContext=context)  # fmt: skip


def find_vm(si: vim.ServiceInstance, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.Destroy()


def test_providers_inventory_maps_and_plans(stack: Stack, target: KubeControlPlane) -> None:
    events = EventLog(f"{stack.planner.http_url}/api/v1/events", stack.security.api_headers())
    assert stack.add_vcenter("vcenter", password=stack.vcsim.password,
                       thumbprint=stack.vcsim.thumbprint_sha256).returncode == 0  # fmt: skip
    kubeconfig = target.kubeconfig
    assert (
        stack.cli("provider", "add", "cluster", "--type", "kubernetes", "--kubeconfig", str(kubeconfig)).returncode == 0
    )
    source_status = stack.wait_provider("vcenter", "ready")
    assert source_status["counts"]["vm"] == 9
    stack.wait_provider("cluster", "ready")
    config = yaml.safe_load(kubeconfig.read_text())
    server = next(c["cluster"]["server"] for c in config["clusters"])
    listed = {p["spec"]["name"]: p["spec"] for p in json.loads(stack.ok("provider", "list", "-o", "json"))}
    assert (listed["cluster"]["url"], listed["cluster"]["context"]) == (server.rstrip("/"), config["current-context"])

    listing = stack.cli("inventory", "vms", "vcenter", "--output", "json")
    vms = {vm["name"]: vm for vm in json.loads(listing.stdout)}
    finance = vms["Finance DB (prod)"]
    assert (finance["firmware"], finance["secure_boot"], finance["vtpm"]) == ("efi", True, True)
    assert [d["datastore_name"] for d in finance["disks"]] == ["LocalDS_0", "LocalDS_1", "LocalDS_1"]
    assert {n["network_name"] for n in finance["nics"]} == {"VM Network", "DC0_DVPG0"}
    filtered = stack.get(stack.inventory, "/providers/vcenter/vms?datastore=LocalDS_1")
    assert {vm["name"] for vm in filtered["items"]} == {"Finance DB (prod)", "orphan"}
    assert "vlan-100" in stack.cli("inventory", "nads", "cluster").stdout

    pairs = ["--pair", "VM Network=pod", "--pair", f"DC0_DVPG0=multus:{NAMESPACE}/vlan-100"]
    assert (
        stack.cli("map", "network", "create", "net", "--source", "vcenter", "--target", "cluster", *pairs).returncode
        == 0
    )
    stored = ["--pair", "LocalDS_0=standard:Block:ReadWriteOnce"]
    assert (
        stack.cli("map", "storage", "create", "sto", "--source", "vcenter", "--target", "cluster", *stored).returncode
        == 0
    )
    bad = stack.cli("map", "storage", "create", "bad", "--source", "vcenter", "--target", "cluster",
                    "--pair", "NoSuchDS=gold")  # fmt: skip
    said = " ".join(bad.stdout.split())  # the PROBLEMS column wraps at 80 columns
    assert "SourceDatastoreNotFound" in said or "not in provider" in said

    vm_args = [arg for ref in ("web-01", "Finance DB (prod)", "multi-pod", "orphan", "mac-taken", "exists-01",
                               "rdm-01", "twin", "ghost", "web-01") for arg in ("--vm", ref)]  # fmt: skip
    created = stack.cli("plan", "create", "p1", "--source", "vcenter", "--target", "cluster", "--network-map", "net",
                        "--storage-map", "sto", "--namespace", NAMESPACE, *vm_args, "--output", "json")  # fmt: skip
    assert created.returncode == 1, created.stderr
    said = " ".join(created.stderr.split())
    assert "plan 'p1' is stored but not Ready" in said and "(DuplicateVM; web-01: VM listed twice;" in said
    assert "`ferry plan show p1`" in said
    plan = json.loads(created.stdout)
    assert plan["status"]["ready"] is False
    assert stack.get(stack.planner, "/plans/p1")["plan"]["name"] == "p1", "the plan is stored all the same"
    concerns = {vm["ref"]: {c["id"] for c in vm["concerns"]} for vm in plan["status"]["vms"]}
    assert "vm.name.renamed" in concerns["Finance DB (prod)"]
    assert "vm.storage.unmapped" in concerns["Finance DB (prod)"]  # LocalDS_1 is not mapped
    assert "vm.network.multiple_pod" in concerns["multi-pod"]
    assert {"vm.network.unmapped", "vm.storage.unmapped"} <= concerns["orphan"]
    assert "vm.target.mac_conflict" in concerns["mac-taken"]
    assert "vm.target.exists" in concerns["exists-01"]
    assert "vm.disk.rdm" in concerns["rdm-01"]
    assert "vm.ambiguous" in concerns["twin"]
    assert "vm.not_found" in concerns["ghost"]
    assert "DuplicateVM" in {c["type"] for c in plan["status"]["conditions"]}
    finance_target = next(v for v in plan["status"]["vms"] if v["ref"] == "Finance DB (prod)")["target_name"]
    assert finance_target.startswith("finance-db-prod-")

    # Live changes in vSphere reach the API without a restart, and plans revalidate.
    si = vsphere(stack)
    try:
        datacenter = si.RetrieveContent().rootFolder.childEntity[0]
        pool = find_vm(si, "orphan").resourcePool
        config = vim.vm.ConfigSpec(name="late-arrival", guestId="otherGuest64", numCPUs=1, memoryMB=256,
                                   files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"))  # fmt: skip
        datacenter.vmFolder.CreateVM_Task(config=config, pool=pool)
        wait_for(lambda: stack.get(stack.inventory, "/providers/vcenter/vms?name=late-arrival")["total"] == 1,
                 timeout=10, what="the new VM to reach the inventory API")  # fmt: skip
        find_vm(si, "web-01").Rename_Task("web-renamed")
        wait_for(lambda: stack.get(stack.inventory, "/providers/vcenter/vms?name=web-renamed")["total"] == 1,
                 timeout=10, what="the rename to reach the inventory API")  # fmt: skip
        wait_for(lambda: "vm.not_found" in {c["id"] for v in stack.get(stack.planner, "/plans/p1")["status"]["vms"]
                                            if v["ref"] == "web-01" for c in v["concerns"]},
                 timeout=10, what="the plan to see web-01 gone")  # fmt: skip
        task = find_vm(si, "exists-01").Destroy_Task()
        wait_for(lambda: task.info.state in ("success", "error") or None, timeout=10, what="VM destroy")
        wait_for(lambda: stack.get(stack.inventory, "/providers/vcenter/vms?name=exists-01")["total"] == 0,
                 timeout=10, what="the deleted VM to leave the inventory")  # fmt: skip
    finally:
        Disconnect(si)
    wait_for(lambda: any(e.get("kind") == "plan_status" and e["name"] == "p1" for e in events.events),
             timeout=10, what="a plan_status server-sent event")  # fmt: skip

    # Secrets appear in no API response, CLI output, service log or NATS event.
    secrets = [stack.vcsim.password, *key_material(kubeconfig)]
    logs = stack.logs()
    streams = nats_stream_dump(stack.nats)
    for secret in secrets:
        for text in (*stack.responses, *logs, streams):
            assert secret not in text
