"""kubevirt-writer's PVC, DataVolume and VirtualMachine bodies against the real
kube-apiserver with KubeVirt's and CDI's CRDs: accepted by the structural schemas and
read back with nothing pruned."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from kubernetes import client

from ferry_kubevirt_writer.domain.vm_manifest import virtual_machine
from ferry_kubevirt_writer.domain.volumes import volume_bodies
from ferry_shared.target_vm import TargetDisk, TargetNic, TargetVm
from ferry_testpeers.kube import KubeControlPlane, create_namespace

pytestmark = pytest.mark.kube

GIB = 1024**3


@dataclass
class Target:
    namespace: str
    core: client.CoreV1Api
    objects: client.CustomObjectsApi


@pytest.fixture
def target(kube: KubeControlPlane) -> Iterator[Target]:
    """A fresh namespace (namespaces never finish deleting here: no controller-manager)."""
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        namespace = create_namespace(core, "ferry-manifest")
        yield Target(namespace, core, client.CustomObjectsApi(api))


def create_all(target: Target, vm: TargetVm) -> dict[str, Any]:
    """Create the VM's volumes and the VM; returns the VM as the apiserver stored it."""
    for body in volume_bodies(vm):
        if body["kind"] == "DataVolume":
            target.objects.create_namespaced_custom_object(
                "cdi.kubevirt.io", "v1beta1", vm.namespace, "datavolumes", body
            )
        else:  # the client sends a dict body as it is; its stubs only name the model class
            target.core.create_namespaced_persistent_volume_claim(vm.namespace, body)  # type: ignore[arg-type]
    target.objects.create_namespaced_custom_object(
        "kubevirt.io", "v1", vm.namespace, "virtualmachines", virtual_machine(vm)
    )
    stored = target.objects.get_namespaced_custom_object("kubevirt.io", "v1", vm.namespace, "virtualmachines", vm.name)
    return cast(dict[str, Any], stored)


def assert_nothing_pruned(stored: dict[str, Any], sent: dict[str, Any]) -> None:
    assert stored["spec"] == sent["spec"]
    assert stored["metadata"]["labels"] == sent["metadata"]["labels"]
    assert stored["metadata"]["annotations"] == sent["metadata"]["annotations"]


def test_bios_vm_with_one_disk_on_the_pod_network(target: Target) -> None:
    vm = TargetVm(
        name="bios-1",
        namespace=target.namespace,
        source_provider="vcenter",
        source_vm_id="vm-101",
        source_vm_name="BIOS VM (legacy)/1",
        plan="wave-1",
        cpu_sockets=1,
        cores_per_socket=2,
        memory_mib=2048,
        firmware="bios",
        run=True,
        disks=(TargetDisk(key=2000, source_file="[ds1] bios-1/bios-1.vmdk", capacity_bytes=GIB,
                          storage_class="standard", volume_mode="Filesystem", access_mode="ReadWriteOnce"),),
        nics=(TargetNic(mac="00:50:56:01:00:01", model="e1000e"),),
    )  # fmt: skip
    stored = create_all(target, vm)
    assert_nothing_pruned(stored, virtual_machine(vm))

    assert stored["spec"]["runStrategy"] == "Always"
    domain = stored["spec"]["template"]["spec"]["domain"]
    assert domain["cpu"] == {"sockets": 1, "cores": 2, "threads": 1}
    assert domain["memory"]["guest"] == "2048Mi"
    assert domain["resources"]["requests"]["memory"] == "2048Mi"
    assert domain["firmware"] == {"bootloader": {"bios": {}}}
    assert domain["devices"]["interfaces"] == [
        {"name": "nic-0", "macAddress": "00:50:56:01:00:01", "model": "e1000e", "masquerade": {}}
    ]
    assert stored["metadata"]["annotations"]["ferry.dev/source-vm-name"] == "BIOS VM (legacy)/1"

    pvc = target.core.read_namespaced_persistent_volume_claim("bios-1-disk-0", target.namespace)
    assert pvc.spec.resources.requests["storage"] == "1084Mi"
    assert pvc.spec.volume_mode == "Filesystem"
    assert pvc.spec.access_modes == ["ReadWriteOnce"]
    assert pvc.spec.storage_class_name == "standard"
    assert pvc.metadata.labels == {
        "app.kubernetes.io/managed-by": "ferry",
        "ferry.dev/plan": "wave-1",
        "ferry.dev/source-vm": "vm-101",
    }


def test_efi_secure_boot_vtpm_vm_with_three_buses_and_two_networks(target: Target) -> None:
    vm = TargetVm(
        name="efi-1",
        namespace=target.namespace,
        source_provider="vcenter prod",
        source_vm_id="vm-202",
        source_vm_name="Windows 2022 / EFI",
        plan="wave-2",
        cpu_sockets=2,
        cores_per_socket=4,
        memory_mib=16384,
        firmware="efi",
        secure_boot=True,
        vtpm=True,
        run=False,
        disks=(
            TargetDisk(key=2000, source_file="[ds1] efi-1/efi-1.vmdk", capacity_bytes=40 * GIB, bus="virtio",
                       storage_class="standard", volume_mode="Filesystem", access_mode="ReadWriteOnce"),
            TargetDisk(key=2001, source_file="[ds1] efi-1/efi-1_1.vmdk", capacity_bytes=10 * GIB + 1, bus="sata",
                       storage_class="fast-block", volume_mode="Block", access_mode="ReadWriteMany"),
            TargetDisk(key=2002, source_file="[ds2] efi-1/efi-1_2.vmdk", capacity_bytes=5 * GIB, bus="scsi",
                       storage_class="standard", use_datavolume=True),
        ),
        nics=(
            TargetNic(mac="00:50:56:02:00:01", model="virtio", destination="pod"),
            TargetNic(mac="00:50:56:02:00:02", model="e1000e", destination="multus", nad="net/vlan-10"),
        ),
    )  # fmt: skip
    stored = create_all(target, vm)
    assert_nothing_pruned(stored, virtual_machine(vm))

    assert stored["spec"]["runStrategy"] == "Halted"
    assert stored["metadata"]["labels"]["ferry.dev/source-provider"] != "vcenter prod"  # sanitized
    assert stored["metadata"]["annotations"]["ferry.dev/source-provider"] == "vcenter prod"
    spec = stored["spec"]["template"]["spec"]
    domain = spec["domain"]
    assert domain["cpu"] == {"sockets": 2, "cores": 4, "threads": 1}
    assert domain["memory"]["guest"] == "16384Mi"
    assert domain["firmware"] == {"bootloader": {"efi": {"secureBoot": True}}}
    assert domain["features"] == {"smm": {"enabled": True}}
    assert domain["devices"]["tpm"] == {"persistent": True}
    assert domain["devices"]["disks"] == [
        {"name": "disk-0", "disk": {"bus": "virtio"}, "bootOrder": 1},
        {"name": "disk-1", "disk": {"bus": "sata"}},
        {"name": "disk-2", "disk": {"bus": "scsi"}},
    ]
    assert domain["devices"]["interfaces"] == [
        {"name": "nic-0", "macAddress": "00:50:56:02:00:01", "model": "virtio", "masquerade": {}},
        {"name": "nic-1", "macAddress": "00:50:56:02:00:02", "model": "e1000e", "bridge": {}},
    ]
    assert spec["networks"] == [
        {"name": "nic-0", "pod": {}},
        {"name": "nic-1", "multus": {"networkName": "net/vlan-10"}},
    ]
    assert spec["volumes"] == [
        {"name": "disk-0", "persistentVolumeClaim": {"claimName": "efi-1-disk-0"}},
        {"name": "disk-1", "persistentVolumeClaim": {"claimName": "efi-1-disk-1"}},
        {"name": "disk-2", "dataVolume": {"name": "efi-1-disk-2"}},
    ]

    block = target.core.read_namespaced_persistent_volume_claim("efi-1-disk-1", target.namespace)
    assert block.spec.volume_mode == "Block"
    assert block.spec.access_modes == ["ReadWriteMany"]
    assert block.spec.resources.requests["storage"] == f"{10 * 1024 + 1}Mi"

    sent_dv = volume_bodies(vm)[2]
    dv = target.objects.get_namespaced_custom_object(
        "cdi.kubevirt.io", "v1beta1", vm.namespace, "datavolumes", "efi-1-disk-2"
    )
    assert dv["spec"] == sent_dv["spec"]
    assert dv["spec"]["source"] == {"blank": {}}
    assert dv["spec"]["storage"]["resources"]["requests"]["storage"] == "5120Mi"
    assert dv["metadata"]["labels"] == sent_dv["metadata"]["labels"]


def test_the_apiserver_would_prune_an_unknown_field(target: Target) -> None:
    """The control for the tests above: the schema is structural, so a field it does not
    know is dropped silently; comparing what was stored with what was sent catches that."""
    vm = TargetVm(name="pruned-1", namespace=target.namespace, source_provider="vcenter", source_vm_id="vm-303",
                  source_vm_name="pruned", plan="wave-3", memory_mib=1024)  # fmt: skip
    body = virtual_machine(vm)
    body["spec"]["template"]["spec"]["domain"]["cpu"]["notAField"] = 1
    target.objects.create_namespaced_custom_object("kubevirt.io", "v1", vm.namespace, "virtualmachines", body)
    stored = target.objects.get_namespaced_custom_object("kubevirt.io", "v1", vm.namespace, "virtualmachines", vm.name)
    assert "notAField" not in stored["spec"]["template"]["spec"]["domain"]["cpu"]
    assert stored["spec"]["template"]["spec"]["domain"]["cpu"] == {"sockets": 1, "cores": 1, "threads": 1}
