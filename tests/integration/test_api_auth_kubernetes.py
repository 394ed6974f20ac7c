"""API authentication and authorization against the real kube-apiserver: ServiceAccount
tokens from the TokenRequest API, the chart's ClusterRoles (rendered by helm) bound to
them, and the planner and inventory as processes in ``FERRY_API_AUTH=kubernetes`` mode,
checking every call with the real TokenReview and SubjectAccessReview."""

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from kubernetes.utils import create_from_yaml

from ferry_peers.binaries import peer_binary
from ferry_peers.nats_server import NatsServer
from ferry_peers.processes import stop_all
from ferry_peers.services import ServiceProcess, start_service
from ferry_shared.api_auth.kubernetes import KubernetesAuthenticator
from ferry_shared.credentials import Secret
from ferry_testpeers.kube import KubeControlPlane, create_namespace
from ferry_testpeers.models import migration_model
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import wait_for

pytestmark = [pytest.mark.kube, pytest.mark.nats, pytest.mark.vsphere]

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "ferry"


def chart_roles() -> list[dict[str, Any]]:
    """The ClusterRoles of ``templates/user-roles.yaml`` as helm renders them."""
    rendered = subprocess.run(
        [str(peer_binary("helm")), "template", "ferry", str(CHART), "--kube-version", "1.30.0",
         "--show-only", "templates/user-roles.yaml"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def service_account_token(core: client.CoreV1Api, namespace: str, name: str) -> str:
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    answer = core.create_namespaced_service_account_token(name, namespace, request)
    return str(answer.status.token)


@dataclass
class Cluster:
    namespace: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def cluster(kube: KubeControlPlane) -> Iterator[Cluster]:
    """Ferry's namespace, the chart's roles, and ServiceAccounts ``viewer`` (ClusterRoleBinding),
    ``operator`` (RoleBinding in Ferry's namespace), ``admin`` and ``nobody`` (no binding). The
    cluster-wide objects are deleted afterwards: the chart's own install (``test_helm``) on the
    same apiserver makes the same ClusterRoles."""
    api = kube.api_client()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    namespace = create_namespace(core, "ferry-auth")
    roles = chart_roles()
    assert sorted(r["metadata"]["name"] for r in roles) == ["ferry-admin", "ferry-operator", "ferry-viewer"]
    existing = {r.metadata.name for r in rbac.list_cluster_role().items}
    made = [r for r in roles if r["metadata"]["name"] not in existing]
    create_from_yaml(api, yaml_objects=made)
    bindings: list[str] = []
    tokens = {name: service_account_token(core, namespace, name) for name in ("viewer", "operator", "admin", "nobody")}
    for name, scope in (("viewer", "cluster"), ("operator", "namespace"), ("admin", "cluster")):
        subject = client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)
        ref = client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=f"ferry-{name}")
        metadata = client.V1ObjectMeta(name=f"{namespace}-{name}")
        if scope == "cluster":
            rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(metadata=metadata, role_ref=ref,
                                                                         subjects=[subject]))  # fmt: skip
            bindings.append(f"{namespace}-{name}")
        else:
            rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(metadata=metadata, role_ref=ref,
                                                                                subjects=[subject]))  # fmt: skip
    yield Cluster(namespace=namespace, tokens=tokens)
    for binding in bindings:
        rbac.delete_cluster_role_binding(binding)
    for role in made:
        rbac.delete_cluster_role(role["metadata"]["name"])


@dataclass
class Services:
    planner: ServiceProcess
    inventory: ServiceProcess
    work_dir: Path


@pytest.fixture
def services(nats_server: NatsServer, kube: KubeControlPlane, cluster: Cluster, tmp_path: Path) -> Iterator[Services]:
    env = {"FERRY_API_AUTH": "kubernetes", "FERRY_API_AUTH_KUBECONFIG": str(kube.kubeconfig),
           "FERRY_NAMESPACE": cluster.namespace}  # fmt: skip
    started: dict[str, ServiceProcess] = {}
    try:
        for name in ("inventory", "planner"):
            started[name] = start_service(name, nats_server, tmp_path, env=env)
        yield Services(started["planner"], started["inventory"], tmp_path)
    finally:
        stop_all(service.process for service in started.values())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def apis(services: Services) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """HTTP clients of the planner's and the inventory's ``/api/v1``."""
    with (
        httpx.Client(base_url=f"{services.planner.http_url}/api/v1", timeout=30) as planner,
        httpx.Client(base_url=f"{services.inventory.http_url}/api/v1", timeout=30) as inventory,
    ):
        yield planner, inventory


def test_tokens_are_checked_with_tokenreview_and_roles_with_subjectaccessreview(
    services: Services,
    apis: tuple[httpx.Client, httpx.Client],
    cluster: Cluster,
    vcsim_factory: VcsimFactory,
    tmp_path: Path,
) -> None:
    planner, inventory = apis
    viewer, operator, admin = (bearer(cluster.tokens[n]) for n in ("viewer", "operator", "admin"))

    for http, path in ((planner, "/migrations"), (inventory, "/providers")):
        for headers in ({}, bearer("garbage"), bearer(cluster.tokens["viewer"] + "x")):
            answer = http.get(path, headers=headers)
            assert answer.status_code == 401, answer.text
            assert answer.json()["reason"] == "unauthenticated"
            assert answer.headers["www-authenticate"].startswith("Bearer")
        assert http.get(path, headers=bearer(cluster.tokens["nobody"])).status_code == 403
        assert http.get(path, headers=viewer).status_code == 200
    with httpx.stream("GET", f"{services.planner.http_url}/api/v1/events", timeout=10) as stream:
        assert stream.status_code == 401
    with httpx.stream("GET", f"{services.planner.http_url}/api/v1/events", headers=viewer, timeout=10) as stream:
        assert stream.status_code == 200
        assert next(stream.iter_lines()) == ": connected"
    for path in ("/openapi.json", "/docs"):
        assert httpx.get(f"{services.planner.http_url}{path}", timeout=10).status_code == 401
        assert httpx.get(f"{services.planner.http_url}{path}", headers=viewer, timeout=10).status_code == 200
    assert httpx.get(f"{services.planner.http_url}/readyz", timeout=10).status_code == 200

    simulator = vcsim_factory(model=migration_model())
    vcenter = {"name": "vcenter", "type": "vsphere", "url": simulator.sdk_url, "username": simulator.username,
               "password": simulator.password, "thumbprint": simulator.thumbprint_sha256}  # fmt: skip
    assert planner.post("/providers", json=vcenter, headers=operator).status_code == 403  # providers: admins only
    assert planner.post("/providers", json=vcenter, headers=admin).status_code == 201
    target = tmp_path / "target"
    target.mkdir()
    local = {"name": "target", "type": "local", "path": str(target)}
    assert planner.post("/providers", json=local, headers=admin).status_code == 201

    def ready(name: str) -> bool | None:
        return planner.get(f"/providers/{name}", headers=viewer).json()["status"]["phase"] == "ready" or None

    for name in ("vcenter", "target"):
        wait_for(functools.partial(ready, name), timeout=60, what=f"provider {name} to be ready")
    assert inventory.get("/providers/vcenter/vms", headers=viewer).json()["total"] >= 1
    ends = {"source_provider": "vcenter", "target_provider": "target"}
    network = {"name": "net", **ends, "pairs": [{"source": "VM Network", "destination": "pod"},
                                                 {"source": "DC0_DVPG0", "destination": "pod"}]}  # fmt: skip
    storage = {"name": "sto", **ends, "pairs": [{"source": "LocalDS_0", "storage_class": "standard"},
                                                 {"source": "LocalDS_1", "storage_class": "standard"}]}  # fmt: skip
    assert planner.post("/networkmaps", json=network, headers=viewer).status_code == 403
    assert planner.post("/networkmaps", json=network, headers=operator).status_code == 201
    assert planner.post("/storagemaps", json=storage, headers=operator).status_code == 201
    plan = {"name": "p1", **ends, "network_map": "net", "storage_map": "sto", "target_namespace": "apps",
            "vms": [{"ref": "web-01"}]}  # fmt: skip
    created = planner.post("/plans", json=plan, headers=operator)
    assert created.status_code == 201, created.text
    assert created.json()["status"]["ready"], created.json()["status"]

    refused = planner.post("/migrations", json={"plan": "p1"}, headers=viewer)
    assert refused.status_code == 403
    viewer_user = f"system:serviceaccount:{cluster.namespace}:viewer"
    assert refused.json() == {"reason": "forbidden", "message": f"user {viewer_user} may not create migrations; "
                              "the ferry-operator role allows it"}  # fmt: skip
    started = planner.post("/migrations", json={"plan": "p1"}, headers=operator)
    assert started.status_code == 201, started.text
    migration = started.json()["name"]
    assert planner.get(f"/migrations/{migration}", headers=viewer).json()["plan"] == "p1"
    assert planner.post(f"/migrations/{migration}/cancel", json={}, headers=viewer).status_code == 403

    log = (services.work_dir / "logs" / "planner.log").read_text()
    audits = [json.loads(line)["audit"] for line in log.splitlines() if '"ferry.audit"' in line]
    by_outcome = {(a["user"], a["verb"], a["resource"], a["outcome"]) for a in audits}
    operator_user = f"system:serviceaccount:{cluster.namespace}:operator"
    assert (viewer_user, "create", "migrations", "forbidden") in by_outcome
    assert (operator_user, "create", "migrations", "succeeded") in by_outcome
    assert (f"system:serviceaccount:{cluster.namespace}:admin", "create", "providers", "succeeded") in by_outcome
    assert all(a["client"].startswith("127.0.0.1:") for a in audits)
    for token in cluster.tokens.values():
        assert token not in log
    assert simulator.password not in log


def test_the_cli_says_in_one_line_what_to_do_on_401_and_403(services: Services, cluster: Cluster) -> None:
    def ferry(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if k not in ("FERRY_TOKEN", "FERRY_API_TOKEN_FILE")}
        environment |= {"FERRY_PLANNER_URL": services.planner.http_url, **env,
                        "FERRY_INVENTORY_URL": services.inventory.http_url,
                        "XDG_CONFIG_HOME": str(services.work_dir / "config"), "COLUMNS": "1000"}  # fmt: skip
        return subprocess.run([sys.executable, "-c", "from ferry_cli.main import app; app()", *args],
                              capture_output=True, text=True, env=environment, timeout=60, check=False)  # fmt: skip

    anonymous = ferry("plan", "list")
    assert anonymous.returncode == 1
    assert len(anonymous.stderr.strip().splitlines()) == 1, anonymous.stderr
    assert "not logged in" in anonymous.stderr and "FERRY_TOKEN" in anonymous.stderr
    assert "does not exist" in anonymous.stderr
    refused = ferry("migrate", "p1", FERRY_TOKEN=cluster.tokens["viewer"])
    assert refused.returncode != 0
    line = " ".join(refused.stderr.split())
    assert "forbidden: user system:serviceaccount:" in line and "may not create migrations" in line, refused.stderr
    assert "ferry-operator" in line
    assert ferry("plan", "list", FERRY_TOKEN=cluster.tokens["viewer"]).returncode == 0


async def test_reviews_are_cached_for_at_most_ten_seconds(kube: KubeControlPlane, cluster: Cluster) -> None:
    """A deleted ServiceAccount's token is still accepted from the cache until 10 s have passed, not after."""
    now = [1000.0]
    core = client.CoreV1Api(kube.api_client())
    token = Secret(service_account_token(core, cluster.namespace, "short-lived"))
    authenticator = KubernetesAuthenticator(kube.api_client(), cluster.namespace, clock=lambda: now[0])
    caller = await authenticator.authenticate(token)
    assert caller is not None and caller.user == f"system:serviceaccount:{cluster.namespace}:short-lived"
    assert token.reveal() not in repr(vars(authenticator._callers))
    core.delete_namespaced_service_account("short-lived", cluster.namespace)
    wait_for(lambda: _rejected(kube, token) or None, timeout=30, what="the apiserver to reject the deleted SA's token")
    now[0] += 9.9
    assert await authenticator.authenticate(token) == caller
    now[0] += 0.1
    assert await authenticator.authenticate(token) is None


def _rejected(kube: KubeControlPlane, token: Secret) -> bool:
    review = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token.reveal()))
    answer = client.AuthenticationV1Api(kube.api_client()).create_token_review(review)
    return not answer.status.authenticated
