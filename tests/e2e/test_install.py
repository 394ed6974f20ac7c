"""Ferry installed on a cluster the way a user installs it: ``helm install`` of the chart with
the images ``make images`` built (by digest), into the real kube-apiserver; every rendered
object accepted by a strict server-side apply; then the release's pods run from those images
with exactly the environment, volumes, service-account tokens and probes the chart gives them
(the test plays the kubelet: :class:`ReleaseNode` for Ferry and its NATS, :class:`SinkNode`
for the disk sinks), and one VM migrated cold through that install with the ``ferry`` CLI,
authenticated as a person bound to the chart's ``ferry-admin`` role."""

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from ferry_peers.binaries import peer_binary
from ferry_peers.images import built_image
from ferry_peers.vcsim import Vcsim
from ferry_testpeers.kube import KubeControlPlane
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.release_node import NodeImage, ReleaseNode, RunningPod, static_binary_image
from ferry_testpeers.sink_node import SinkNode
from ferry_testpeers.waiting import wait_for

from .harness import source_disks, target_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.vsphere, pytest.mark.kube]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "ferry"
RELEASE, NAMESPACE, TARGET = "install", "ferry-install", "vms-install"
PREFIX = f"{RELEASE}-ferry"
SERVICES = ("inventory", "planner", "transfer", "kubevirt-writer")
NATS_IMAGE = "nats:2.10-alpine"
VM = "web-01"


def one_vm_model() -> dict[str, Any]:
    disk = {"capacity": "12MiB", "datastore": "LocalDS_0", "content": {"kind": "random", "seed": 11}}
    nic = {"network": "VM Network", "mac": "00:50:56:00:20:01"}
    vm = {"name": VM, "cluster": "C0", "power_state": "poweredOn", "guest_id": "rhel9_64Guest", "num_cpu": 1,
          "memory_mb": 512, "cbt": True, "disks": [disk], "nics": [nic]}  # fmt: skip
    datacenter = {"name": "DC0", "datastores": [{"name": "LocalDS_0"}], "networks": [{"name": "VM Network"}],
                  "clusters": [{"name": "C0", "hosts": [{"name": "DC0_C0_H0"}]}], "vms": [vm]}  # fmt: skip
    return {"datacenters": [datacenter]}


def helm(kube: KubeControlPlane, *args: str) -> str:
    result = subprocess.run([str(peer_binary("helm")), "--kubeconfig", str(kube.kubeconfig), *args],
                            capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert result.returncode == 0, f"helm {args[0]} failed: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def node_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NodeImage]:
    """What the node can pull: Ferry's built image (by reference and by digest) and NATS."""
    ferry = built_image("ferry")
    rootfs = ferry.unpack(tmp_path_factory.mktemp("ferry-image") / "bundle")
    image = NodeImage(rootfs=rootfs, entrypoint=ferry.entrypoint, cmd=ferry.cmd, env=ferry.environment)
    repository = ferry.reference.rsplit(":", 1)[0]
    nats = static_binary_image(peer_binary("nats-server"), tmp_path_factory.mktemp("nats-image"),
                               inside="/usr/local/bin/nats-server")  # fmt: skip
    return {ferry.reference: image, f"{repository}@{ferry.digest}": image, NATS_IMAGE: nats}


def install_values() -> list[str]:
    ferry = built_image("ferry")
    return ["--namespace", NAMESPACE, "--set", f"image.repository={ferry.reference.rsplit(':', 1)[0]}",
            "--set", f"image.digest={ferry.digest}", "--set", f"targetNamespaces={{{TARGET}}}"]  # fmt: skip


def applied_strictly(kube: KubeControlPlane, api: client.ApiClient) -> list[str]:
    """Every object ``helm template`` renders for these values, server-side applied as a dry run
    with strict field validation; the objects applied, as ``Kind/name``."""
    dynamic = DynamicClient(api)
    applied = []
    for document in yaml.safe_load_all(helm(kube, "template", RELEASE, str(CHART), *install_values())):
        if not document:
            continue
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        resource_namespace = document["metadata"].get("namespace", NAMESPACE) if resource.namespaced else None
        dynamic.server_side_apply(resource, body=document, namespace=resource_namespace,
                                  field_manager="ferry-install-test", force_conflicts=True, dry_run="All",
                                  query_params=[("fieldValidation", "Strict")])  # fmt: skip
        applied.append(f"{document['kind']}/{document['metadata']['name']}")
    return applied


def person_token(api: client.ApiClient) -> str:
    """A token of someone granted the chart's ``ferry-admin`` role in Ferry's namespace (the
    README's RoleBinding), as ``kubectl create token`` gives it."""
    core: Any = client.CoreV1Api(api)  # Any: plain JSON bodies, which the client's stubs do not describe
    rbac: Any = client.RbacAuthorizationV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="people")))
    core.create_namespaced_service_account("people", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="ada")))
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "ada-ferry-admin", "namespace": NAMESPACE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ferry-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "ada", "namespace": "people"}]}  # fmt: skip
    rbac.create_namespaced_role_binding(NAMESPACE, binding)
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
    return str(core.create_namespaced_service_account_token("ada", "people", request).status.token)


class Cli:
    """The ``ferry`` CLI pointed at the release's planner and inventory pods."""

    def __init__(self, pods: dict[str, RunningPod], token: str) -> None:
        self.env = {**os.environ, "FERRY_TOKEN": token, "FERRY_PLANNER_URL": f"http://{pods['planner'].ip}:8080",
                    "FERRY_INVENTORY_URL": f"http://{pods['inventory'].ip}:8080"}  # fmt: skip

    def run(self, *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ferry_cli", *args], input=stdin, capture_output=True, text=True,
                              env=self.env, timeout=timeout, check=False)  # fmt: skip

    def ok(self, *args: str, stdin: str = "", timeout: float = 120) -> str:
        result = self.run(*args, stdin=stdin, timeout=timeout)
        assert result.returncode == 0, f"ferry {' '.join(args)} failed: {result.stderr or result.stdout}"
        return result.stdout

    def wait_ready(self, *providers: str) -> None:
        for name in providers:
            wait_for(functools.partial(self._ready, name), timeout=60, what=f"provider {name} to be ready")

    def _ready(self, name: str) -> bool | None:
        return True if self._phase(name) == "ready" else None

    def _phase(self, name: str) -> str:
        provider = json.loads(self.ok("provider", "show", name, "--output", "json"))
        return str(provider["status"]["phase"])


@pytest.fixture
def cluster(kube: KubeControlPlane) -> Iterator[client.ApiClient]:
    with kube.api_client() as api:
        target_namespace(api, TARGET)
        yield api


def start_release(node: ReleaseNode) -> dict[str, RunningPod]:
    pods = {"nats": node.run_stateful_set(f"{PREFIX}-nats")}
    for service in SERVICES:
        pods[service] = node.run_deployment(f"{PREFIX}-{service}")
    return pods


def migrate_one_vm(cli: Cli, simulator: Vcsim, plan: str) -> dict[str, Any]:
    """Connect, map, plan and migrate VM through the release; the migration's final view."""
    cli.ok("plan", "create", plan, "--source", "vcenter", "--target", "cluster", "--network-map", "net",
           "--storage-map", "sto", "--namespace", TARGET, "--vm", VM)  # fmt: skip
    lines = [json.loads(line) for line in cli.ok("migrate", plan, "--output", "json", timeout=300).splitlines() if line]
    assert lines and lines[-1]["phase"] == "Succeeded", lines[-1:]
    migration: dict[str, Any] = json.loads(cli.ok("migration", "show", lines[-1]["name"], "--output", "json"))
    return migration


def check_disk_arrived(api: client.ApiClient, sinks: SinkNode, simulator: Vcsim, migration: dict[str, Any]) -> None:
    (vm,) = migration["vms"]
    manifest = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "kubevirt.io", "v1", TARGET, "virtualmachines", vm["target_name"]
    )
    (volume,) = manifest["spec"]["template"]["spec"]["volumes"]
    claim = volume.get("persistentVolumeClaim", {}).get("claimName") or volume["dataVolume"]["name"]
    (source,) = source_disks(simulator, VM)
    expected = Path(source["path_on_disk"]).read_bytes()
    assert sinks.disk_path(TARGET, claim).read_bytes()[: len(expected)] == expected


def test_a_release_installed_from_the_built_images_migrates_a_vm(
    kube: KubeControlPlane, cluster: client.ApiClient, vcsim_factory: VcsimFactory,
    node_images: dict[str, NodeImage], tmp_path: Path,
) -> None:  # fmt: skip
    simulator = vcsim_factory(model=one_vm_model())
    helm(kube, "install", RELEASE, str(CHART), *install_values(), "--create-namespace")
    applied = applied_strictly(kube, cluster)
    assert {f"Deployment/{PREFIX}-{s}" for s in SERVICES} | {f"StatefulSet/{PREFIX}-nats"} <= set(applied)

    node = ReleaseNode(kube, cluster, NAMESPACE, tmp_path / "node", node_images)
    sinks = SinkNode(cluster, tmp_path / "sinks")
    sinks.start()
    try:
        pods = start_release(node)
        cli = Cli(pods, person_token(cluster))
        cli.ok("provider", "add", "vcenter", "--type", "vsphere", "--url", simulator.sdk_url, "--username",
               simulator.username, "--thumbprint", simulator.thumbprint_sha256, "--password-stdin",
               stdin=simulator.password + "\n")  # fmt: skip
        cli.ok("provider", "add", "cluster", "--type", "kubernetes", "--in-cluster")
        cli.wait_ready("vcenter", "cluster")
        cli.ok("map", "network", "create", "net", "--source", "vcenter", "--target", "cluster", "--pair",
               "VM Network=pod")  # fmt: skip
        cli.ok("map", "storage", "create", "sto", "--source", "vcenter", "--target", "cluster", "--pair",
               "LocalDS_0=standard:Block:ReadWriteOnce")  # fmt: skip
        migration = migrate_one_vm(cli, simulator, "wave1")
        check_disk_arrived(cluster, sinks, simulator, migration)
        sinks.check()
    finally:
        node.stop_all()
        sinks.stop()
