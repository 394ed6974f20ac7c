"""The ``kubernetes`` credentials backend against the real kube-apiserver: each provider's
secret is a labelled Secret in Ferry's namespace, written by the planner and read by the
inventory under the RBAC the chart gives them (client-certificate users bound to Roles
here), deleted with the provider, and never sent to NATS."""

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ferry_peers.nats_server import NatsServer
from ferry_peers.processes import stop_all
from ferry_peers.services import start_service
from ferry_shared.credential_stores.choice import own_api_client
from ferry_shared.credential_stores.kubernetes_store import (
    PROVIDER_ANNOTATION,
    PROVIDER_LABEL,
    KubernetesSecretStore,
    secret_name,
)
from ferry_shared.credentials import CREDENTIALS_UNREADABLE, CredentialsUnreadableError, Secret
from ferry_shared.labels import MANAGED_BY
from ferry_testpeers.kube import KubeControlPlane, create_namespace
from ferry_testpeers.models import planning_model
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import wait_for

from .harness import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.nats, pytest.mark.vsphere]

VERBS = {"planner": ["create", "delete", "get", "update"], "inventory": ["get"]}
"""What the chart grants on Secrets in Ferry's namespace (the kubevirt-writer as the inventory)."""


@pytest.fixture(scope="module")
def namespace(kube: KubeControlPlane) -> str:
    """Ferry's namespace, with the planner's and the inventory's Roles on Secrets bound to
    client-certificate users of the same names; ``ferry-transfer`` has no binding."""
    api = kube.api_client()
    name = create_namespace(client.CoreV1Api(api), "ferry-system")
    rbac = client.RbacAuthorizationV1Api(api)
    for service, verbs in VERBS.items():
        rule = client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=verbs)
        rbac.create_namespaced_role(name, client.V1Role(metadata=client.V1ObjectMeta(name=service), rules=[rule]))
        subject = client.RbacV1Subject(kind="User", name=f"ferry-{service}", api_group="rbac.authorization.k8s.io")
        binding = client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=service),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=service),
            subjects=[subject],
        )
        rbac.create_namespaced_role_binding(name, binding)
    return name


def store_as(kube: KubeControlPlane, user: str, namespace: str) -> KubernetesSecretStore:
    return KubernetesSecretStore(own_api_client(kube.user_kubeconfig(user)), namespace)


def read_secret(kube: KubeControlPlane, namespace: str, name: str) -> client.V1Secret | None:
    try:
        found: client.V1Secret = client.CoreV1Api(kube.api_client()).read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


async def test_secrets_are_labelled_readable_by_the_readers_and_refused_to_others(
    kube: KubeControlPlane, namespace: str
) -> None:
    planner = store_as(kube, "ferry-planner", namespace)
    inventory = store_as(kube, "ferry-inventory", namespace)
    transfer = store_as(kube, "ferry-transfer", namespace)
    provider = "vcenter-" + "x" * 60  # a name longer than a Secret's name may be

    await planner.put(provider, Secret("first password"))
    first = read_secret(kube, namespace, secret_name(provider))
    await planner.put(provider, Secret("second password"))  # a new password, or a Secret left over
    stored = read_secret(kube, namespace, secret_name(provider))
    assert first is not None and stored is not None
    assert stored.metadata.uid == first.metadata.uid, "replaced in place: readers never find it missing"
    assert stored is not None and len(str(stored.metadata.name)) <= 63
    assert stored.metadata.labels[PROVIDER_LABEL] and stored.metadata.labels[MANAGED_BY] == "ferry"
    assert stored.metadata.annotations[PROVIDER_ANNOTATION] == provider
    assert base64.b64decode(stored.data["secret"]).decode() == "second password"
    assert await inventory.get(provider) == Secret("second password")
    assert await inventory.get("never-added") is None

    with pytest.raises(CredentialsUnreadableError) as refused:
        await transfer.get(provider)
    assert refused.value.code == CREDENTIALS_UNREADABLE
    assert "may not read Secret" in refused.value.message and "password" not in refused.value.message
    with pytest.raises(CredentialsUnreadableError, match="may not write"):
        await inventory.put(provider, Secret("overwritten"))

    await planner.delete(provider)
    assert read_secret(kube, namespace, secret_name(provider)) is None
    assert await inventory.get(provider) is None
    await planner.delete(provider)  # deleting again is no error


@pytest.fixture
def stack(
    nats_server: NatsServer, vcsim_factory: VcsimFactory, kube: KubeControlPlane, namespace: str, tmp_path: Path
) -> Iterator[Stack]:
    simulator = vcsim_factory(model=planning_model(), password=f"Ferry-Kube-Secret-{time.monotonic_ns()}")
    services = {}
    try:
        for name in ("planner", "inventory"):
            env = {
                "FERRY_CREDENTIALS_BACKEND": "kubernetes",
                "FERRY_NAMESPACE": namespace,
                "FERRY_KUBECONFIG": str(kube.user_kubeconfig(f"ferry-{name}")),
            }
            services[name] = start_service(name, nats_server, tmp_path, env=env)
        yield Stack(nats_server, simulator, services, tmp_path)
    finally:
        stop_all(service.process for service in services.values())


def test_a_providers_password_is_a_secret_deleted_with_it_and_never_in_nats(
    stack: Stack, kube: KubeControlPlane, namespace: str
) -> None:
    password = stack.vcsim.password
    assert stack.add_vcenter("vcenter", password=password, thumbprint=stack.vcsim.thumbprint_sha256).returncode == 0
    stack.wait_provider("vcenter", "ready")  # the inventory read the Secret and logged in
    assert stack.provider("vcenter")["has_credentials"] is True
    stored = read_secret(kube, namespace, secret_name("vcenter"))
    assert stored is not None and stored.metadata.labels[PROVIDER_LABEL] == "vcenter"
    assert base64.b64decode(stored.data["secret"]).decode() == password

    stack.ok("provider", "delete", "vcenter")
    wait_for(lambda: read_secret(kube, namespace, secret_name("vcenter")) is None or None, timeout=10,
             what="the provider's Secret to be deleted")  # fmt: skip

    needles = (password.encode(), base64.b64encode(password.encode()))
    in_nats = [str(path) for path in stack.nats.store_dir.rglob("*") if path.is_file()
               if any(needle in path.read_bytes() for needle in needles)]  # fmt: skip
    assert not in_nats
    assert not [text for text in (*stack.responses, *stack.logs()) if password in text]
