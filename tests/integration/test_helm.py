"""The Helm chart installs into the real apiserver; each service account may do what its
service needs and is refused a sample of what it must not (checked with the apiserver's own
SubjectAccessReview); every pod is hardened; the values schema refuses bad values; the chart's
own NATS gets generated identities, TLS and store key, kept on upgrade, in a configuration the
real nats-server runs."""

import asyncio
import base64
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
import pytest
import yaml
from cryptography import x509
from kubernetes import client

from ferry_peers.binaries import peer_binary
from ferry_peers.ports import free_port
from ferry_shared import subjects
from ferry_shared.bus.connection import NatsAuthenticationError, connect
from ferry_shared.bus.permissions import inbox_prefix
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.migrations import CleanupVm, DiskCopyProgress
from ferry_shared.pki import Authority
from ferry_testpeers.kube import KubeControlPlane, create_namespace
from ferry_testpeers.waiting import wait_for

pytestmark = pytest.mark.kube

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "ferry"
RELEASE, NAMESPACE = "ferry", "ferry-system"
PREFIX = f"{RELEASE}-ferry"
OTHER = "not-a-target"
NATS = f"{PREFIX}-nats"
NATS_SECRETS = ("passwords", "store-key", "tls", "ca", "config")
SERVICES = ["inventory", "kubevirt-writer", "planner", "transfer"]


def run_helm(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(peer_binary("helm")), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def helm(kube: KubeControlPlane, *args: str) -> str:
    result = run_helm(kube.kubeconfig, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass(frozen=True)
class Release:
    kube: KubeControlPlane
    targets: tuple[str, str]

    def install_args(self) -> list[str]:
        return [str(CHART), "--namespace", NAMESPACE, "--set", f"targetNamespaces={{{','.join(self.targets)}}}"]


@pytest.fixture(scope="module")
def release(kube: KubeControlPlane) -> Iterator[Release]:
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        targets = (create_namespace(core, "vms"), create_namespace(core, "vms"))
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=OTHER)))
    installed = Release(kube, targets)
    helm(kube, "install", RELEASE, *installed.install_args(), "--create-namespace")
    yield installed
    helm(kube, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")


def allowed(api: client.ApiClient, service: str, namespace: str | None, group: str, resource: str, verb: str) -> bool:
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{NAMESPACE}:{PREFIX}-{service}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb=verb, group=group, resource=resource
            ),
        )
    )
    answer = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


FERRY, TARGET = "<ferry>", "<target>"  # placeholders for the release and a target namespace
CLUSTER = None

NEEDED = [
    # service, namespace, group, resource, verbs
    ("planner", CLUSTER, "authentication.k8s.io", "tokenreviews", "create"),
    ("planner", CLUSTER, "authorization.k8s.io", "subjectaccessreviews", "create"),
    ("planner", FERRY, "", "secrets", "create get update delete"),
    ("inventory", CLUSTER, "authentication.k8s.io", "tokenreviews", "create"),
    ("inventory", CLUSTER, "authorization.k8s.io", "subjectaccessreviews", "create"),
    ("inventory", FERRY, "", "secrets", "get"),
    ("inventory", CLUSTER, "", "namespaces", "get list watch"),
    ("inventory", CLUSTER, "storage.k8s.io", "storageclasses", "get list watch"),
    ("inventory", CLUSTER, "kubevirt.io", "virtualmachines", "get list watch"),
    ("kubevirt-writer", FERRY, "", "secrets", "get"),
    ("kubevirt-writer", TARGET, "", "pods", "create get list watch delete"),
    ("kubevirt-writer", TARGET, "", "persistentvolumeclaims", "create get list delete"),
    ("kubevirt-writer", TARGET, "cdi.kubevirt.io", "datavolumes", "create get list delete"),
    ("kubevirt-writer", TARGET, "kubevirt.io", "virtualmachines", "create get list delete"),
    ("kubevirt-writer", TARGET, "", "secrets", "create get delete"),
    ("kubevirt-writer", TARGET, "networking.k8s.io", "networkpolicies", "create get delete"),
]

REFUSED = [
    ("planner", CLUSTER, "", "secrets", "list get"),
    ("planner", FERRY, "", "secrets", "list watch patch"),
    ("planner", TARGET, "", "pods", "create"),
    ("planner", CLUSTER, "", "namespaces", "delete"),
    ("inventory", CLUSTER, "", "secrets", "list get"),
    ("inventory", FERRY, "", "secrets", "list create delete update"),
    ("inventory", TARGET, "kubevirt.io", "virtualmachines", "create delete"),
    ("inventory", CLUSTER, "", "namespaces", "delete"),
    ("kubevirt-writer", CLUSTER, "", "secrets", "list get"),
    ("kubevirt-writer", FERRY, "", "secrets", "create delete list"),
    ("kubevirt-writer", TARGET, "", "secrets", "list watch update"),
    ("kubevirt-writer", FERRY, "", "pods", "create"),
    ("kubevirt-writer", OTHER, "", "pods", "create"),
    ("kubevirt-writer", OTHER, "kubevirt.io", "virtualmachines", "create"),
    ("kubevirt-writer", OTHER, "", "secrets", "create get"),
    ("kubevirt-writer", TARGET, "", "pods", "patch update"),
    ("kubevirt-writer", TARGET, "kubevirt.io", "virtualmachines", "patch"),
    ("kubevirt-writer", TARGET, "", "services", "create"),
    ("kubevirt-writer", CLUSTER, "", "namespaces", "delete create"),
    ("kubevirt-writer", CLUSTER, "authentication.k8s.io", "tokenreviews", "create"),
    ("kubevirt-writer", CLUSTER, "rbac.authorization.k8s.io", "rolebindings", "create"),
    ("transfer", FERRY, "", "secrets", "get list"),
    ("transfer", TARGET, "", "secrets", "get"),
    ("transfer", FERRY, "", "pods", "get list"),
    ("transfer", TARGET, "", "pods", "create get"),
    ("transfer", CLUSTER, "", "namespaces", "list"),
    ("transfer", CLUSTER, "authentication.k8s.io", "tokenreviews", "create"),
    ("transfer", TARGET, "kubevirt.io", "virtualmachines", "create get"),
]


def _namespaces(release: Release, placeholder: str | None) -> list[str | None]:
    if placeholder == FERRY:
        return [NAMESPACE]
    if placeholder == TARGET:
        return list(release.targets)
    return [placeholder]


def _label(row: tuple[str, str | None, str, str, str]) -> str:
    service, namespace, group, resource, verbs = row
    return f"{service}:{verbs.replace(' ', ',')}:{group or 'core'}/{resource}@{namespace or 'cluster'}"


def _reviews(release: Release, row: tuple[str, str | None, str, str, str]) -> list[tuple[tuple[str, str | None], bool]]:
    """Each (verb, namespace) of ``row`` with the SubjectAccessReview's answer for its service account."""
    service, placeholder, group, resource, verbs = row
    with release.kube.api_client() as api:
        return [
            ((verb, namespace), allowed(api, service, namespace, group, resource, verb))
            for namespace in _namespaces(release, placeholder)
            for verb in verbs.split()
        ]


@pytest.mark.parametrize("row", NEEDED, ids=_label)
def test_each_service_account_may_do_what_its_service_needs(
    release: Release, row: tuple[str, str | None, str, str, str]
) -> None:
    refused = [check for check, ok in _reviews(release, row) if not ok]
    assert refused == []


@pytest.mark.parametrize("row", REFUSED, ids=_label)
def test_each_service_account_is_refused_what_its_service_does_not_need(
    release: Release, row: tuple[str, str | None, str, str, str]
) -> None:
    granted = [check for check, ok in _reviews(release, row) if ok]
    assert granted == []


def _deployments(release: Release) -> dict[str, client.V1Deployment]:
    with release.kube.api_client() as api:
        items = client.AppsV1Api(api).list_namespaced_deployment(NAMESPACE).items
    return {d.metadata.name.removeprefix(f"{PREFIX}-"): d for d in items}


def _env(deployment: client.V1Deployment) -> dict[str, Any]:
    return {e.name: e.value or e.value_from for e in deployment.spec.template.spec.containers[0].env}


def test_every_pod_is_hardened_and_only_api_clients_mount_a_token(release: Release) -> None:
    deployments = _deployments(release)
    assert sorted(deployments) == ["inventory", "kubevirt-writer", "planner", "transfer"]
    with release.kube.api_client() as api:
        accounts = {a.metadata.name: a for a in client.CoreV1Api(api).list_namespaced_service_account(NAMESPACE).items}
    for service, deployment in deployments.items():
        pod = deployment.spec.template.spec
        assert pod.service_account_name == f"{PREFIX}-{service}"
        uses_kube_api = service != "transfer"
        assert pod.automount_service_account_token is uses_kube_api, service
        assert accounts[f"{PREFIX}-{service}"].automount_service_account_token is uses_kube_api, service
        assert pod.security_context.run_as_non_root and pod.security_context.seccomp_profile.type == "RuntimeDefault"
        for container in pod.containers:
            context = container.security_context
            assert context.run_as_non_root is True and context.run_as_user == 10001, service
            assert context.read_only_root_filesystem is True, service
            assert context.allow_privilege_escalation is False, service
            assert context.capabilities.drop == ["ALL"] and not context.capabilities.add, service
            assert context.seccomp_profile.type == "RuntimeDefault", service
            assert container.readiness_probe.http_get.path == "/readyz"
            assert container.resources.limits["memory"]
            mounts = {m.mount_path: m for m in container.volume_mounts}
            assert "/tmp" in mounts, "a writable /tmp on a read-only root"
            assert all(m.read_only for path, m in mounts.items() if path.startswith("/etc/ferry/")), service


def test_services_get_their_identity_and_tls_material_from_secrets(release: Release) -> None:
    deployments = _deployments(release)
    for service, deployment in deployments.items():
        env = _env(deployment)
        volumes = {v.name: v for v in deployment.spec.template.spec.volumes}
        nats = volumes["nats-credentials"].secret
        assert nats.secret_name == f"{NATS}-passwords"
        assert [(i.key, i.path) for i in nats.items] == [(service, "password")], "only its own password"
        assert env["FERRY_NATS_USER"] == service
        assert env["FERRY_NATS_PASSWORD_FILE"] == "/etc/ferry/nats/password"
        assert "FERRY_NATS_CREDS_FILE" not in env
        assert env["FERRY_NATS_CA_FILE"] == "/etc/ferry/nats-ca/ca.crt"
        assert volumes["nats-ca"].secret.secret_name == f"{NATS}-ca"
        assert env["FERRY_NATS_URL"] == f"tls://{NATS}.{NAMESPACE}.svc:4222"
        assert env["FERRY_JETSTREAM_REPLICAS"] == "1"
        assert deployment.spec.template.metadata.annotations["checksum/nats"]
        assert ("FERRY_API_AUTH" in env) is (service in ("planner", "inventory"))
        if service != "transfer":
            assert env["FERRY_CREDENTIALS_BACKEND"] == "kubernetes"
            assert env["FERRY_NAMESPACE"].field_ref.field_path == "metadata.namespace"
            assert "FERRY_SECRETS_KEY_FILE" not in env, "no keyring with the kubernetes backend"
        else:
            assert not {"FERRY_CREDENTIALS_BACKEND", "FERRY_NAMESPACE"} & set(env), "no credentials in the transfer"
        assert ("nbd-ca" in volumes) is (service == "kubevirt-writer"), "the NBD CA key is the writer's alone"
        assert ("nbd-tls" in volumes) is (service == "transfer")
    assert _env(deployments["planner"])["FERRY_API_AUTH"] == "kubernetes"
    assert _env(deployments["kubevirt-writer"])["FERRY_WRITER_NBD_CA_DIR"] == "/etc/ferry/nbd-ca"
    assert _env(deployments["transfer"])["FERRY_TRANSFER_NBD_TLS_DIR"] == "/etc/ferry/nbd-tls"
    assert _env(deployments["kubevirt-writer"])["FERRY_WRITER_SINK_IMAGE"] == "ghcr.io/ferry-migrate/nbd-sink:0.1.0"
    planner = deployments["planner"]
    assert _env(planner)["FERRY_PLANNER_MAX_VMS_PER_HOST"] == "10"
    assert _env(planner)["FERRY_PLANNER_REPLICA_NAME"].field_ref.field_path == "metadata.name"
    assert planner.spec.replicas == 2, "a standby planner takes over when the active one dies"
    with release.kube.api_client() as api:
        budget = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(f"{PREFIX}-planner", NAMESPACE)
    assert budget.spec.min_available == 1


def _nbd_secrets(release: Release) -> tuple[dict[str, bytes], dict[str, bytes]]:
    with release.kube.api_client() as api:
        core = client.CoreV1Api(api)
        ca, transfer = (core.read_namespaced_secret(f"{PREFIX}-{n}", NAMESPACE) for n in ("nbd-ca", "nbd-transfer"))
    decode = lambda s: {k: base64.b64decode(v) for k, v in s.data.items()}  # noqa: E731
    return decode(ca), decode(transfer)


def test_generated_nbd_ca_signs_the_transfer_certificate_and_is_kept_on_upgrades(release: Release) -> None:
    ca, transfer = _nbd_secrets(release)
    assert sorted(ca) == ["ca-cert.pem", "ca-key.pem"]
    assert sorted(transfer) == ["ca-cert.pem", "client-cert.pem", "client-key.pem"], "no CA key for the transfer"
    Authority.load(ca["ca-cert.pem"], ca["ca-key.pem"])  # the writer's loader accepts it
    authority = x509.load_pem_x509_certificate(ca["ca-cert.pem"])
    x509.load_pem_x509_certificate(transfer["client-cert.pem"]).verify_directly_issued_by(authority)
    assert transfer["ca-cert.pem"] == ca["ca-cert.pem"]

    helm(release.kube, "upgrade", RELEASE, *release.install_args())
    assert _nbd_secrets(release) == (ca, transfer), "an upgrade keeps the NBD CA and certificate"

    with release.kube.api_client() as api:
        client.CoreV1Api(api).delete_namespaced_secret(f"{PREFIX}-nbd-transfer", NAMESPACE)
    helm(release.kube, "upgrade", RELEASE, *release.install_args())
    kept_ca, reissued = _nbd_secrets(release)
    assert kept_ca == ca and reissued["client-cert.pem"] != transfer["client-cert.pem"]
    x509.load_pem_x509_certificate(reissued["client-cert.pem"]).verify_directly_issued_by(authority)


def test_transfer_alone_reaches_the_sinks_of_the_target_namespaces(release: Release) -> None:
    with release.kube.api_client() as api:
        policies = client.NetworkingV1Api(api).list_namespaced_network_policy(NAMESPACE).items
    by_service = {p.metadata.name.removeprefix(f"{PREFIX}-"): p for p in policies}
    assert sorted(by_service) == sorted([*SERVICES, "nats"])
    for service, policy in by_service.items():
        assert policy.spec.pod_selector.match_labels["app.kubernetes.io/component"] == service
        assert sorted(policy.spec.policy_types or []) == ["Egress", "Ingress"]
        sink_rules = [r for r in policy.spec.egress if any(p.port == 10809 for p in r.ports or [])]
        if service == "nats":
            assert not sink_rules
            continue
        nats_rule = next(r for r in policy.spec.egress if any(p.port == 4222 for p in r.ports or []))
        assert [peer.pod_selector.match_labels["app.kubernetes.io/component"] for peer in nats_rule.to] == ["nats"]
        if service != "transfer":
            assert not sink_rules, service
            continue
        (rule,) = sink_rules
        (peer,) = rule.to or []
        assert peer.pod_selector.match_labels == {"ferry.dev/role": "disk-sink"}
        (namespaces,) = peer.namespace_selector.match_expressions or []
        assert sorted(namespaces.values or []) == sorted(release.targets)
        assert not policy.spec.ingress, "nothing calls a transfer worker"
    transfer = next(p for p in policies if p.metadata.name == f"{PREFIX}-transfer")
    assert transfer.spec.pod_selector.match_labels["app.kubernetes.io/name"] == "ferry"


def _template(kube: KubeControlPlane, *values: str) -> subprocess.CompletedProcess[str]:
    sets = [arg for value in values for arg in ("--set", value)]
    return run_helm(kube.kubeconfig, "template", RELEASE, str(CHART), "-n", NAMESPACE, *sets)  # no --kube-version


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("replicaCount=3", "additional properties 'replicaCount' not allowed"),
        ("services.planner.replicas=two", "/services/planner/replicas"),
        ("nats.external.url=nats://plain:4222", "/nats/external/url"),
        ("nats.url=tls://nats:4222", "additional properties 'url' not allowed"),
        ("nats.replicas=2", "/nats/replicas"),
        ("nats.storage.size=lots", "/nats/storage/size"),
        ("credentials.backend=vault", "/credentials/backend"),
        ("credentials.backend=nats", "/credentials/keyringSecret"),
        ("targetNamespaces={Not_A_Name}", "/targetNamespaces/0"),
        ("podSecurity.runAsUser=0", "/podSecurity/runAsUser"),
        ("services.transfer.sidecar=x", "additional properties 'sidecar' not allowed"),
        (f"targetNamespaces={{{NAMESPACE}}}", "may not contain the release namespace"),
        ("nbdTls.caSecret=mine", "set both caSecret and transferSecret"),
        ("services.transfer.spread.hostname=Maybe", "/services/transfer/spread/hostname"),
        ("services.transfer.autoscaling.keda.lagThreshold=0", "/services/transfer/autoscaling/keda/lagThreshold"),
        ("userRoles.create=no", "/userRoles/create"),
        ("services.transfer.autoscaling.keda.enabled=true", "list KEDA's operator in networkPolicy.natsMonitorFrom"),
    ],
)
def test_chart_refuses_bad_values(kube: KubeControlPlane, value: str, complaint: str) -> None:
    result = _template(kube, value)
    assert result.returncode != 0 and complaint in result.stderr, result.stderr


def test_chart_lints_and_renders_operator_secrets_and_the_nats_backend(kube: KubeControlPlane) -> None:
    helm(kube, "lint", str(CHART))
    result = _template(
        kube, "nbdTls.caSecret=my-ca", "nbdTls.transferSecret=my-client",
        "credentials.backend=nats", "credentials.keyringSecret=my-keyring",
        "nats.deploy=false", "nats.external.urlSecret.name=my-nats-url",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert not [d for d in documents if d["kind"] == "Secret"], "the operator's Secrets, none generated"
    roles = {d["metadata"]["name"] for d in documents if d["kind"] in ("Role", "ClusterRole")}
    assert not {n for n in roles if "provider-secrets" in n}, "no Secret access without the kubernetes backend"
    assert f"{PREFIX}-kubevirt-writer" not in roles, "no target namespaces: the writer may create nothing"
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["FERRY_NATS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "my-nats-url"
        assert env["FERRY_NATS_CREDS_FILE"]["value"] == "/etc/ferry/nats/credentials"
        assert env["FERRY_NATS_CA_FILE"]["value"] == "/etc/ferry/nats-ca/ca.crt"
        assert "FERRY_NATS_USER" not in env
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["nats-credentials"]["secret"]["secretName"] == "ferry-nats-credentials"
        assert volumes["nats-ca"]["secret"]["secretName"] == "ferry-nats-ca"
        transfer = deployment["metadata"]["name"].endswith("-transfer")
        assert ("FERRY_SECRETS_KEY_FILE" in env) is not transfer
    components = {d["metadata"]["labels"].get("app.kubernetes.io/component") for d in documents}
    assert "nats" not in components and not [d for d in documents if d["kind"] == "StatefulSet"], "no NATS objects"


def _documents(kube: KubeControlPlane, *values: str) -> list[dict[str, Any]]:
    result = _template(kube, *values)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _secret_files(documents: list[dict[str, Any]], name: str) -> dict[str, bytes]:
    (secret,) = [d for d in documents if d["kind"] == "Secret" and d["metadata"]["name"] == name]
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def test_chart_renders_without_a_kube_version(kube: KubeControlPlane) -> None:
    result = run_helm(kube.kubeconfig, "template", RELEASE, str(CHART), "-n", NAMESPACE)
    assert result.returncode == 0, result.stderr


def test_the_chart_runs_its_own_nats_with_jetstream_on_a_volume(release: Release) -> None:
    with release.kube.api_client() as api:
        nats = client.AppsV1Api(api).read_namespaced_stateful_set(NATS, NAMESPACE)
        core = client.CoreV1Api(api)
        services = {s.metadata.name: s for s in core.list_namespaced_service(NAMESPACE).items}
        secrets = {s.metadata.name for s in core.list_namespaced_secret(NAMESPACE).items}
    assert nats.spec.replicas == 1 and nats.spec.service_name == f"{NATS}-headless"
    (claim,) = nats.spec.volume_claim_templates or []
    assert claim.spec.resources.requests["storage"] == "10Gi" and claim.spec.storage_class_name is None
    assert [p.port for p in services[NATS].spec.ports] == [4222]
    assert services[f"{NATS}-headless"].spec.cluster_ip == "None"
    assert {f"{NATS}-{name}" for name in NATS_SECRETS} <= secrets
    pod = nats.spec.template.spec
    assert pod.automount_service_account_token is False
    (container,) = pod.containers
    assert container.image == "nats:2.10-alpine"
    assert container.readiness_probe.http_get.path == "/healthz?js-enabled-only=true"
    assert container.readiness_probe.http_get.port == "monitor"
    context = container.security_context
    assert context.run_as_non_root and context.run_as_user == 1000 and context.read_only_root_filesystem
    assert context.capabilities.drop == ["ALL"] and context.allow_privilege_escalation is False
    assert {v.name: v for v in pod.volumes}["config"].secret.secret_name == f"{NATS}-config", "a Secret, no ConfigMap"
    assert nats.spec.template.metadata.annotations["checksum/nats"]


def test_only_ferry_pods_reach_the_nats_client_port(release: Release) -> None:
    with release.kube.api_client() as api:
        policy = client.NetworkingV1Api(api).read_namespaced_network_policy(NATS, NAMESPACE)
    by_port = {rule.ports[0].port: rule for rule in policy.spec.ingress}
    assert sorted(by_port) == [4222, 6222]
    (clients,) = by_port[4222]._from or []
    components = {e.key: e.values or [] for e in clients.pod_selector.match_expressions or []}
    assert sorted(components["app.kubernetes.io/component"]) == SERVICES
    assert components["app.kubernetes.io/instance"] == [RELEASE]
    (routes,) = by_port[6222]._from or []
    assert routes.pod_selector.match_labels["app.kubernetes.io/component"] == "nats"


def _nats_secrets(release: Release) -> dict[str, dict[str, str]]:
    with release.kube.api_client() as api:
        core = client.CoreV1Api(api)
        secrets = {name: core.read_namespaced_secret(f"{NATS}-{name}", NAMESPACE) for name in NATS_SECRETS}
    return {name: {key: str(value) for key, value in (secret.data or {}).items()} for name, secret in secrets.items()}


def test_the_generated_nats_secrets_are_kept_on_upgrades(release: Release) -> None:
    before = _nats_secrets(release)
    assert sorted(before["passwords"]) == SERVICES
    assert all(len(base64.b64decode(p)) == 32 for p in before["passwords"].values())
    config = base64.b64decode(before["config"]["nats.conf"]).decode()
    assert not [p for p in before["passwords"].values() if base64.b64decode(p).decode() in config], "hashes only"
    assert config.count('password: "$2a$') == len(SERVICES)
    annotation = _deployments(release)["planner"].spec.template.metadata.annotations["checksum/nats"]
    helm(release.kube, "upgrade", RELEASE, *release.install_args())
    assert _nats_secrets(release) == before, "an upgrade keeps the passwords, hashes, TLS and store key"
    assert _deployments(release)["planner"].spec.template.metadata.annotations["checksum/nats"] == annotation


def test_three_nats_replicas_form_a_jetstream_cluster(kube: KubeControlPlane) -> None:
    documents = _documents(kube, "nats.replicas=3")
    config = _secret_files(documents, f"{NATS}-config")["nats.conf"].decode()
    routes = [line.strip().strip('"') for line in config.splitlines() if ":6222" in line and "tls://" in line]
    assert routes == [f"tls://{NATS}-{i}.{NATS}-headless.{NAMESPACE}.svc:6222" for i in range(3)]
    assert f'name: "{NATS}"' in config
    budgets = {d["metadata"]["name"]: d for d in documents if d["kind"] == "PodDisruptionBudget"}
    assert budgets[NATS]["spec"]["maxUnavailable"] == 1
    (statefulset,) = [d for d in documents if d["kind"] == "StatefulSet"]
    assert statefulset["spec"]["replicas"] == 3
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["FERRY_JETSTREAM_REPLICAS"] == "3"
    assert NATS not in {d["metadata"]["name"] for d in _documents(kube) if d["kind"] == "PodDisruptionBudget"}


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _write_nats_files(release: Release, directory: Path, port: int) -> Path:
    """The installed Secrets' configuration and TLS, with the pod's paths moved under ``directory``."""
    secrets = {name: {k: base64.b64decode(v) for k, v in data.items()} for name, data in _nats_secrets(release).items()}
    for key, value in secrets["tls"].items():
        (directory / key).write_bytes(value)
    config = secrets["config"]["nats.conf"].decode()
    config = config.replace("/etc/nats/tls/", f"{directory}/").replace('"/data/', f'"{directory}/')
    config = config.replace('listen: "0.0.0.0:4222"', f'listen: "127.0.0.1:{port}"').replace('http: "0.0.0.0:8222"', "")
    path = directory / "nats.conf"
    path.write_text(config)
    for service, password in secrets["passwords"].items():
        (directory / f"{service}.password").write_bytes(password)
    return path


def test_nats_server_accepts_the_rendered_configuration(release: Release, tmp_path: Path) -> None:
    config = _write_nats_files(release, tmp_path, free_port())
    result = subprocess.run(
        [str(peer_binary("nats-server")), "--config", str(config), "-t"],
        capture_output=True, text=True, timeout=30, check=False, env={"POD_NAME": f"{NATS}-0"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture
def rendered_nats(release: Release, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The real nats-server running the installed configuration: its URL, and the directory of its files."""
    port = free_port()
    config = _write_nats_files(release, tmp_path, port)
    server = subprocess.Popen(
        [str(peer_binary("nats-server")), "--config", str(config)], env={"POD_NAME": f"{NATS}-0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _listening(port), timeout=10, what="the rendered nats-server to listen")
        yield f"tls://127.0.0.1:{port}", tmp_path
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_a_service_connects_to_the_rendered_nats_with_its_password_and_only_its_rights(
    rendered_nats: tuple[str, Path],
) -> None:
    url, files = rendered_nats

    async def as_service(service: str, password_file: Path) -> Any:
        return await connect(
            url, name=service, user=service, password_file=password_file, ca_file=files / "ca.crt",
            tls_hostname=f"{NATS}.{NAMESPACE}.svc", inbox_prefix=inbox_prefix(service),
        )  # fmt: skip

    planner = await as_service(subjects.PLANNER, files / "planner.password")
    transfer = await as_service(subjects.TRANSFER, files / "transfer.password")
    try:
        await ensure_topology(planner.jetstream())
        await transfer.jetstream().publish(DiskCopyProgress.subject, b"{}", timeout=5)  # its own event
        before = (await planner.jetstream().stream_info(subjects.COMMANDS_STREAM)).state.messages
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await transfer.jetstream().publish(CleanupVm.subject, b"{}", timeout=2)
        assert (await planner.jetstream().stream_info(subjects.COMMANDS_STREAM)).state.messages == before
    finally:
        await transfer.close()
        await planner.close()
    wrong = files / "wrong.password"
    wrong.write_text("not-the-password")
    with pytest.raises(NatsAuthenticationError, match="user 'transfer'") as refused:
        await asyncio.wait_for(as_service(subjects.TRANSFER, wrong), timeout=15)
    assert "not-the-password" not in str(refused.value) and str(wrong) in str(refused.value)


KEDA_PEER = "networkPolicy.natsMonitorFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=keda"


def _named(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_keda_scales_the_transfer_workers_on_the_backlog_of_their_durable(kube: KubeControlPlane) -> None:
    assert not _named(_documents(kube), "ScaledObject"), "no ScaledObject unless asked (it needs KEDA's CRDs)"
    documents = _documents(
        kube, "services.transfer.autoscaling.keda.enabled=true", "services.transfer.autoscaling.keda.maxReplicas=6",
        "services.transfer.replicas=1", KEDA_PEER,
    )  # fmt: skip
    scaled = _named(documents, "ScaledObject")[f"{PREFIX}-transfer"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {"name": f"{PREFIX}-transfer"}
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 6)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    assert trigger["metadata"] == {
        "natsServerMonitoringEndpoint": f"{NATS}-headless.{NAMESPACE}.svc:8222",
        "account": "$G",
        "stream": subjects.COMMANDS_STREAM,
        "consumer": subjects.durable_name(subjects.TRANSFER),
        "lagThreshold": "16",
        "useHttps": "false",
    }
    deployments = _named(documents, "Deployment")
    assert "replicas" not in deployments[f"{PREFIX}-transfer"]["spec"], "KEDA owns the replicas; an upgrade keeps them"
    assert deployments[f"{PREFIX}-planner"]["spec"]["replicas"] == 2
    assert _named(documents, "PodDisruptionBudget")[f"{PREFIX}-transfer"]["spec"]["maxUnavailable"] == 1
    headless = _named(documents, "Service")[f"{NATS}-headless"]
    assert {p["name"]: p["port"] for p in headless["spec"]["ports"]}["monitor"] == 8222
    ingress = _named(documents, "NetworkPolicy")[NATS]["spec"]["ingress"]
    (monitor,) = [rule for rule in ingress if rule["ports"] == [{"protocol": "TCP", "port": 8222}]]
    assert monitor["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}]


def test_keda_against_an_external_nats_needs_its_monitoring_endpoint(kube: KubeControlPlane) -> None:
    keda = ("services.transfer.autoscaling.keda.enabled=true", "nats.deploy=false")
    refused = _template(kube, *keda)
    assert refused.returncode != 0 and "set monitoringEndpoint" in refused.stderr, refused.stderr
    documents = _documents(
        kube, *keda, "services.transfer.autoscaling.keda.monitoringEndpoint=nats-mon.nats:8222",
        "services.transfer.autoscaling.keda.account=FERRY", "services.transfer.autoscaling.keda.useHttps=true",
    )  # fmt: skip
    (trigger,) = _named(documents, "ScaledObject")[f"{PREFIX}-transfer"]["spec"]["triggers"]
    assert trigger["metadata"]["natsServerMonitoringEndpoint"] == "nats-mon.nats:8222"
    assert (trigger["metadata"]["account"], trigger["metadata"]["useHttps"]) == ("FERRY", "true")


def test_an_autoscaler_of_ones_own_owns_the_transfer_replicas(kube: KubeControlPlane) -> None:
    documents = _documents(kube, "services.transfer.autoscaling.external=true")
    assert "replicas" not in _named(documents, "Deployment")[f"{PREFIX}-transfer"]["spec"]
    assert not _named(documents, "ScaledObject")
    one = _documents(kube, "services.transfer.replicas=1")
    assert f"{PREFIX}-transfer" not in _named(one, "PodDisruptionBudget"), "no budget for a single worker"


def _spread(deployment: dict[str, Any]) -> dict[str, str]:
    constraints = deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    for constraint in constraints:
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        assert constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
        assert constraint["maxSkew"] == 1
    return {c["topologyKey"]: c["whenUnsatisfiable"] for c in constraints}


def test_transfer_workers_and_planners_spread_over_nodes_and_zones(kube: KubeControlPlane) -> None:
    deployments = _named(_documents(kube), "Deployment")
    preferred = {"kubernetes.io/hostname": "ScheduleAnyway", "topology.kubernetes.io/zone": "ScheduleAnyway"}
    assert _spread(deployments[f"{PREFIX}-transfer"]) == preferred
    assert _spread(deployments[f"{PREFIX}-planner"]) == preferred
    assert _spread(deployments[f"{PREFIX}-inventory"]) == {}
    chosen = _named(
        _documents(kube, "services.transfer.spread.hostname=DoNotSchedule", "services.transfer.spread.zone="),
        "Deployment",
    )
    assert _spread(chosen[f"{PREFIX}-transfer"]) == {"kubernetes.io/hostname": "DoNotSchedule"}


def test_every_container_has_resources_and_probes(kube: KubeControlPlane) -> None:
    documents = _documents(kube)
    workloads = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == len(SERVICES) + 1
    for workload in workloads:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            name = container["name"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert container["resources"]["limits"]["memory"], name
            assert container["livenessProbe"] and container["readinessProbe"], name
    (nats,) = [w for w in workloads if w["kind"] == "StatefulSet"]
    startup = nats["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert startup["httpGet"] == {"path": "/healthz?js-enabled-only=true", "port": "monitor"}


def test_a_second_release_leaves_the_user_cluster_roles_to_the_first(kube: KubeControlPlane) -> None:
    user_roles = {"ferry-viewer", "ferry-operator", "ferry-admin"}
    assert set(_named(_documents(kube), "ClusterRole")) >= user_roles
    second = _named(_documents(kube, "userRoles.create=false"), "ClusterRole")
    assert second and all(name.startswith(f"{PREFIX}-") for name in second), "only the release's own, no ferry-*"


def test_notes_say_how_to_reach_the_api(kube: KubeControlPlane) -> None:
    release, namespace = "second", "migrations"
    notes = helm(kube, "install", release, str(CHART), "-n", namespace, "--dry-run", "--set", "userRoles.create=false")
    notes = notes.split("NOTES:", 1)[1]
    assert f"kubectl -n {namespace} port-forward svc/{release}-ferry-planner 8081:80" in notes
    assert f"port-forward svc/{release}-ferry-inventory 8082:80" in notes
    assert "FERRY_PLANNER_URL=http://localhost:8081" in notes and "FERRY_TOKEN=$(kubectl" in notes
    said = " ".join(notes.split())
    assert "ferry-viewer (read), ferry-operator (also plan and migrate) or ferry-admin (also manage providers)" in said
    assert "another release made them" in notes and "--clusterrole=ferry-admin" in notes, "providers need ferry-admin"
