"""The Kubernetes client against the real kube-apiserver with KubeVirt's CRDs."""

import copy
import json
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ferry_testpeers.kube import KubeControlPlane, new_client

pytestmark = pytest.mark.kube

NAMESPACE = "ferry-foundation"


def virtual_machine(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"ferry.dev/source-vm": "vm-42"}},
        "spec": {
            "runStrategy": "Halted",
            "template": {
                "spec": {
                    "domain": {
                        "cpu": {"sockets": 2, "cores": 2, "threads": 1},
                        "memory": {"guest": "4Gi"},
                        "firmware": {"bootloader": {"efi": {"secureBoot": True}}},
                        "features": {"smm": {"enabled": True}},
                        "devices": {
                            "disks": [{"name": "disk0", "disk": {"bus": "virtio"}}],
                            "interfaces": [
                                {"name": "nic0", "masquerade": {}, "macAddress": "00:50:56:aa:bb:01"},
                                {"name": "nic1", "bridge": {}, "macAddress": "00:50:56:aa:bb:02"},
                            ],
                        },
                    },
                    "networks": [
                        {"name": "nic0", "pod": {}},
                        {"name": "nic1", "multus": {"networkName": "ferry/vlan-10"}},
                    ],
                    "volumes": [{"name": "disk0", "persistentVolumeClaim": {"claimName": f"{name}-disk0"}}],
                }
            },
        },
    }


@pytest.fixture(scope="module")
def objects(kube: KubeControlPlane) -> client.CustomObjectsApi:
    api = kube.api_client()
    core = client.CoreV1Api(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    except ApiException as error:
        if error.status != 409:
            raise
    return client.CustomObjectsApi(api)


def create_vm(objects: client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    created = objects.create_namespaced_custom_object("kubevirt.io", "v1", NAMESPACE, "virtualmachines", body)
    return cast(dict[str, Any], created)


def test_apiserver_accepts_a_valid_virtual_machine(objects: client.CustomObjectsApi) -> None:
    create_vm(objects, virtual_machine("valid-vm"))
    stored: Any = objects.get_namespaced_custom_object("kubevirt.io", "v1", NAMESPACE, "virtualmachines", "valid-vm")
    domain = stored["spec"]["template"]["spec"]["domain"]
    assert domain["cpu"] == {"sockets": 2, "cores": 2, "threads": 1}
    assert domain["firmware"]["bootloader"]["efi"]["secureBoot"] is True
    assert [i["macAddress"] for i in domain["devices"]["interfaces"]] == [
        "00:50:56:aa:bb:01",
        "00:50:56:aa:bb:02",
    ]


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (
            ("spec", "template", "spec", "domain", "cpu", "cores"),
            "two",
            "spec.template.spec.domain.cpu.cores",
        ),
        (("spec", "template", "spec", "domain"), None, "spec.template.spec.domain"),
        (("spec", "template"), None, "spec.template"),
    ],
)
def test_apiserver_rejects_a_malformed_virtual_machine(
    objects: client.CustomObjectsApi, path: tuple[str, ...], value: Any, complaint: str
) -> None:
    body = copy.deepcopy(virtual_machine("bad-vm"))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(ApiException) as raised:
        create_vm(objects, body)
    assert raised.value.status == 422
    status = json.loads(raised.value.body or "{}")
    assert complaint in status["message"]


def test_rbac_denies_a_user_without_a_role(kube: KubeControlPlane) -> None:
    kubeconfig = kube.user_kubeconfig("nobody")
    with (
        new_client(kubeconfig) as api,
        pytest.raises(ApiException) as raised,
    ):
        client.CustomObjectsApi(api).list_namespaced_custom_object("kubevirt.io", "v1", NAMESPACE, "virtualmachines")
    assert raised.value.status == 403
