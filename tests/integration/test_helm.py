"""The Helm chart installs into the real apiserver, and its RBAC is least-privilege."""

import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from ferry_peers.binaries import peer_binary
from ferry_testpeers.kube import KubeControlPlane

pytestmark = pytest.mark.kube

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "ferry"
RELEASE, NAMESPACE, OTHER = "ferry", "ferry-system", "not-a-target"


def helm(kube: KubeControlPlane, *args: str) -> str:
    result = subprocess.run(
        [str(peer_binary("helm")), "--kubeconfig", str(kube.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def allowed(
    api: client.ApiClient, service_account: str, namespace: str, group: str, resource: str, verb: str = "create"
) -> bool:
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{NAMESPACE}:{service_account}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}"],
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb=verb, group=group, resource=resource
            ),
        )
    )
    answer = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


def test_chart_installs_and_grants_kubevirt_writer_only_its_objects(kube: KubeControlPlane) -> None:
    helm(kube, "lint", str(CHART))
    helm(kube, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace")
    with kube.api_client() as api:
        deployments = client.AppsV1Api(api).list_namespaced_deployment(NAMESPACE).items
        names = sorted(d.metadata.name for d in deployments)
        assert names == [f"{RELEASE}-ferry-{s}" for s in ("inventory", "kubevirt-writer", "planner", "transfer")]
        for deployment in deployments:
            container = deployment.spec.template.spec.containers[0]
            assert container.readiness_probe.http_get.path == "/readyz"
            assert container.resources.limits["memory"]

        writer = f"{RELEASE}-ferry-kubevirt-writer"
        for verb in ("create", "get", "list", "watch", "delete"):  # disk-sink pods
            assert allowed(api, writer, NAMESPACE, "", "pods", verb), verb
        for group, resource in [("", "persistentvolumeclaims"), ("cdi.kubevirt.io", "datavolumes"),
                                ("kubevirt.io", "virtualmachines")]:  # fmt: skip
            for verb in ("create", "get", "list", "delete"):
                assert allowed(api, writer, NAMESPACE, group, resource, verb), f"{verb} {resource}"
            assert not allowed(api, writer, NAMESPACE, group, resource, "patch"), f"patch {resource}"
        assert not allowed(api, writer, OTHER, "kubevirt.io", "virtualmachines")
        assert not allowed(api, writer, NAMESPACE, "", "secrets")
        assert not allowed(api, writer, NAMESPACE, "", "services")
        assert not allowed(api, writer, NAMESPACE, "", "pods", "patch")
        writer_deployment = next(d for d in deployments if d.metadata.name == writer)
        env = {e.name: e.value for e in writer_deployment.spec.template.spec.containers[0].env}
        assert env["FERRY_WRITER_SINK_IMAGE"] == "ghcr.io/ferry-migrate/nbd-sink:0.1.0"
        assert env["FERRY_WRITER_SINK_READY_TIMEOUT"] == "600"
        planner_deployment = next(d for d in deployments if d.metadata.name == f"{RELEASE}-ferry-planner")
        planner_env = {e.name: e.value for e in planner_deployment.spec.template.spec.containers[0].env}
        assert planner_env["FERRY_PLANNER_MAX_VMS_PER_HOST"] == "10"
        assert planner_env["FERRY_PLANNER_STEP_DEADLINE"] == "900"
        assert planner_deployment.spec.replicas == 2, "a standby planner takes over when the active one dies"
        replica_name = next(e for e in planner_deployment.spec.template.spec.containers[0].env
                            if e.name == "FERRY_PLANNER_REPLICA_NAME")  # fmt: skip
        assert replica_name.value_from.field_ref.field_path == "metadata.name"
        budget = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(f"{RELEASE}-ferry-planner", NAMESPACE)
        assert budget.spec.min_available == 1
        assert not allowed(api, f"{RELEASE}-ferry-transfer", NAMESPACE, "kubevirt.io", "virtualmachines")
