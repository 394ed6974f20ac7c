"""Ferry installed on a cluster the way a user installs it, into the real kube-apiserver:
``helm install`` of the previous chart version with the image ``make images`` built (by tag),
a VM migrated cold, ``helm upgrade`` to this chart with the image by digest (every rendered
object also accepted by a strict server-side apply), the earlier migration and the stored
provider passwords still there and a second VM migrated, then ``helm uninstall`` leaving the
migrated VMs, DataVolumes and claims alone.

The release's pods run from the images with exactly the environment, volumes,
service-account tokens and probes the chart gives them (the test plays the kubelet:
:class:`ReleaseNode` for Ferry and its NATS, :class:`SinkNode` for the disk sinks); the
``ferry`` CLI drives them as a person bound to the chart's ``ferry-admin`` role."""

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
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
VMS = ("web-01", "web-02")
PREVIOUS_CHART = Path(__file__).parent / "charts" / "ferry-0.1.0.tgz"
"""The chart version before this one, as released (``charts/README.md`` says how it was made)."""


def two_vm_model() -> dict[str, Any]:
    """One VM migrated before the upgrade, one after."""
    vms = []
    for index, name in enumerate(VMS):
        disk = {"capacity": "12MiB", "datastore": "LocalDS_0", "content": {"kind": "random", "seed": 11 + index}}
        nic = {"network": "VM Network", "mac": f"00:50:56:00:20:0{index + 1}"}
        vms.append({"name": name, "cluster": "C0", "power_state": "poweredOn", "guest_id": "rhel9_64Guest",
                    "num_cpu": 1, "memory_mb": 512, "cbt": True, "disks": [disk], "nics": [nic]})  # fmt: skip
    datacenter = {"name": "DC0", "datastores": [{"name": "LocalDS_0"}], "networks": [{"name": "VM Network"}],
                  "clusters": [{"name": "C0", "hosts": [{"name": "DC0_C0_H0"}]}], "vms": vms}  # fmt: skip
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


def install_values(*, by_digest: bool = True) -> list[str]:
    """The values of the install: the built image by digest (the previous chart knows only tags)."""
    ferry = built_image("ferry")
    repository, tag = ferry.reference.rsplit(":", 1)
    image = f"image.digest={ferry.digest}" if by_digest else f"image.tag={tag}"
    return ["--namespace", NAMESPACE, "--set", f"image.repository={repository}", "--set", image,
            "--set", f"targetNamespaces={{{TARGET}}}"]  # fmt: skip


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


def create_once(create: Callable[..., object], *args: object) -> None:
    """Create an object unless it exists (the test installs twice)."""
    try:
        create(*args)
    except ApiException as error:
        if error.status != 409:
            raise


def person_token(api: client.ApiClient) -> str:
    """A token of someone granted the chart's ``ferry-admin`` role in Ferry's namespace (the
    README's RoleBinding), as ``kubectl create token`` gives it."""
    core: Any = client.CoreV1Api(api)  # Any: plain JSON bodies, which the client's stubs do not describe
    rbac: Any = client.RbacAuthorizationV1Api(api)
    create_once(core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name="people")))
    create_once(core.create_namespaced_service_account, "people", {"metadata": {"name": "ada"}})
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "ada-ferry-admin", "namespace": NAMESPACE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ferry-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "ada", "namespace": "people"}]}  # fmt: skip
    create_once(rbac.create_namespaced_role_binding, NAMESPACE, binding)
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


def migrate_one_vm(cli: Cli, plan: str, vm: str) -> dict[str, Any]:
    """Plan and migrate ``vm`` through the release; the migration's final view."""
    cli.ok("plan", "create", plan, "--source", "vcenter", "--target", "cluster", "--network-map", "net",
           "--storage-map", "sto", "--namespace", TARGET, "--vm", vm)  # fmt: skip
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
    (source,) = source_disks(simulator, vm["vm_name"])
    expected = Path(source["path_on_disk"]).read_bytes()
    assert sinks.disk_path(TARGET, claim).read_bytes()[: len(expected)] == expected


def connect(cli: Cli, simulator: Vcsim) -> None:
    """The vCenter, the cluster Ferry runs in (its service accounts) and maps between them."""
    cli.ok("provider", "add", "vcenter", "--type", "vsphere", "--url", simulator.sdk_url, "--username",
           simulator.username, "--thumbprint", simulator.thumbprint_sha256, "--password-stdin",
           stdin=simulator.password + "\n")  # fmt: skip
    cli.ok("provider", "add", "cluster", "--type", "kubernetes", "--in-cluster")
    cli.wait_ready("vcenter", "cluster")
    cli.ok("map", "network", "create", "net", "--source", "vcenter", "--target", "cluster", "--pair",
           "VM Network=pod")  # fmt: skip
    cli.ok("map", "storage", "create", "sto", "--source", "vcenter", "--target", "cluster", "--pair",
           "LocalDS_0=standard:Block:ReadWriteOnce")  # fmt: skip


def release_secrets(api: client.ApiClient) -> dict[str, dict[str, str]]:
    """The release namespace's Secrets but Helm's own records: name → data."""
    found = client.CoreV1Api(api).list_namespaced_secret(NAMESPACE).items
    return {str(s.metadata.name): {k: str(v) for k, v in (s.data or {}).items()} for s in found
            if s.metadata and s.type != "helm.sh/release.v1"}  # fmt: skip


def migrated_objects(api: client.ApiClient) -> dict[str, list[dict[str, Any]]]:
    """The target namespace's VirtualMachines, DataVolumes and claims, as plain objects."""
    objects = client.CustomObjectsApi(api)
    claims = client.CoreV1Api(api).list_namespaced_persistent_volume_claim(TARGET).items
    machines = objects.list_namespaced_custom_object("kubevirt.io", "v1", TARGET, "virtualmachines")
    volumes = objects.list_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", TARGET, "datavolumes")
    return {"virtualmachines": machines["items"], "datavolumes": volumes["items"],
            "claims": [api.sanitize_for_serialization(claim) for claim in claims]}  # fmt: skip


def test_install_upgrade_and_uninstall_keep_migrations_and_migrated_vms(
    kube: KubeControlPlane, cluster: client.ApiClient, vcsim_factory: VcsimFactory,
    node_images: dict[str, NodeImage], tmp_path: Path,
) -> None:  # fmt: skip
    simulator = vcsim_factory(model=two_vm_model())
    helm(kube, "install", RELEASE, str(PREVIOUS_CHART), *install_values(by_digest=False), "--create-namespace")
    node = ReleaseNode(kube, cluster, NAMESPACE, tmp_path / "node", node_images)
    sinks = SinkNode(cluster, tmp_path / "sinks")
    sinks.start()
    try:
        cli = Cli(start_release(node), person_token(cluster))
        connect(cli, simulator)
        first = migrate_one_vm(cli, "wave1", VMS[0])
        check_disk_arrived(cluster, sinks, simulator, first)
        secrets_before = release_secrets(cluster)
        node.stop_all()  # the rolling update's first half: every pod of the old templates goes

        helm(kube, "upgrade", RELEASE, str(CHART), "--reset-then-reuse-values", *install_values())
        applied = applied_strictly(kube, cluster)
        assert {f"Deployment/{PREFIX}-{s}" for s in SERVICES} | {f"StatefulSet/{PREFIX}-nats"} <= set(applied)
        deployment = client.AppsV1Api(cluster).read_namespaced_deployment(f"{PREFIX}-planner", NAMESPACE)
        assert deployment.spec.template.spec.containers[0].image.endswith(f"@{built_image('ferry').digest}")
        assert release_secrets(cluster) == secrets_before, "the upgrade keeps every Secret: NATS, TLS, passwords"

        cli = Cli(start_release(node), cli.env["FERRY_TOKEN"])
        kept = json.loads(cli.ok("migration", "show", first["name"], "--output", "json"))
        assert kept["phase"] == "Succeeded" and [vm["phase"] for vm in kept["vms"]] == ["Completed"]
        cli.wait_ready("vcenter", "cluster")  # with the password stored before the upgrade
        second = migrate_one_vm(cli, "wave2", VMS[1])
        check_disk_arrived(cluster, sinks, simulator, second)
        sinks.check()
    finally:
        node.stop_all()
        sinks.stop()

    before = migrated_objects(cluster)
    assert len(before["virtualmachines"]) == len(VMS) and len(before["claims"]) == len(VMS), before
    helm(kube, "uninstall", RELEASE, "--namespace", NAMESPACE)
    after = migrated_objects(cluster)
    names = {kind: sorted(o["metadata"]["name"] for o in found) for kind, found in after.items()}
    assert names == {kind: sorted(o["metadata"]["name"] for o in found) for kind, found in before.items()}
    owners = {
        ref["kind"] for found in after.values() for o in found for ref in o["metadata"].get("ownerReferences") or []
    }
    assert owners <= {"VirtualMachine", "DataVolume"}, "nothing migrated is owned by (so collected with) the release"
    check_installing_again_finds_the_migrations(kube, cluster, node, [first["name"], second["name"]])


def check_installing_again_finds_the_migrations(
    kube: KubeControlPlane, api: client.ApiClient, node: ReleaseNode, migrations: list[str]
) -> None:
    """After an uninstall, NATS's volume and its store key are still there: a new install reads them."""
    kept = release_secrets(api)
    assert f"{PREFIX}-nats-store-key" in kept, "uninstall keeps the JetStream store key"
    helm(kube, "install", RELEASE, str(CHART), *install_values())
    try:
        assert release_secrets(api)[f"{PREFIX}-nats-store-key"] == kept[f"{PREFIX}-nats-store-key"]
        pods = {"nats": node.run_stateful_set(f"{PREFIX}-nats")}
        pods |= {name: node.run_deployment(f"{PREFIX}-{name}") for name in ("inventory", "planner")}
        listed = json.loads(Cli(pods, person_token(api)).ok("migration", "list", "--output", "json"))
        assert sorted(m["name"] for m in listed) == sorted(migrations)
    finally:
        node.stop_all()
        helm(kube, "uninstall", RELEASE, "--namespace", NAMESPACE)
