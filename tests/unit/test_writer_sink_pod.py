"""kubevirt-writer's disk-sink pod: its name, labels and containers, the sinks it
describes, and how its status is read (pure domain)."""

import re
from typing import Any

import msgspec
import pytest

from ferry_kubevirt_writer.domain.ownership import sink_is_ours
from ferry_kubevirt_writer.domain.sink_names import sink_pod_name
from ferry_kubevirt_writer.domain.sink_pod import (
    Broken,
    Gone,
    Serving,
    Starting,
    Stopping,
    disk_sinks,
    sink_pod,
    sink_state,
)
from ferry_shared.migrations import SinkLocation
from ferry_shared.target_vm import TargetDisk, TargetVm

MIB = 1024 * 1024
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
VM = TargetVm(
    name="web-1", namespace="apps", source_provider="vc", source_vm_id="vm-42", source_vm_name="Web 1", plan="p1",
    memory_mib=1024,
    disks=(
        TargetDisk(key=2000, source_file="a.vmdk", capacity_bytes=MIB, volume_mode="Block"),
        TargetDisk(key=2001, source_file="b.vmdk", capacity_bytes=2 * MIB, volume_mode="Filesystem"),
        TargetDisk(key=2002, source_file="c.vmdk", capacity_bytes=3 * MIB),  # the StorageClass decides
    ),
)  # fmt: skip


def test_the_pod_is_named_after_the_vm_within_63_characters_and_deterministically() -> None:
    assert sink_pod_name("web-1") == "web-1-disk-sink"
    long = "a" * 50 + "-" + "b" * 12
    assert len(long) == 63
    name = sink_pod_name(long)
    assert len(name) <= 63 and DNS1123.fullmatch(name) and name.endswith("-disk-sink")
    assert name == sink_pod_name(long)
    assert name != sink_pod_name(long[:-1] + "c")


def test_labels_mark_role_migration_and_vm_with_label_safe_values() -> None:
    labels = sink_pod("Wave 1 / retry #2" + "x" * 60, VM, "img")["metadata"]["labels"]
    assert labels["ferry.dev/role"] == "disk-sink"
    assert labels["ferry.dev/vm"] == "web-1"
    assert labels["app.kubernetes.io/managed-by"] == "ferry"
    assert all(LABEL_VALUE.fullmatch(value) and len(value) <= 63 for value in labels.values())
    assert sink_is_ours(labels, VM)
    assert not sink_is_ours(labels, msgspec.structs.replace(VM, name="web-2"))
    assert not sink_is_ours({"ferry.dev/vm": "web-1"}, VM)


def test_each_disk_gets_a_qemu_nbd_container_on_its_own_port() -> None:
    pod: dict[str, Any] = sink_pod("p1-1", VM, "ghcr.io/ferry-migrate/nbd-sink:0.1.0")
    spec = pod["spec"]
    containers = spec["containers"]
    assert [c["name"] for c in containers] == ["disk-0", "disk-1", "disk-2"]
    assert [c["ports"][0]["containerPort"] for c in containers] == [10809, 10810, 10811]
    assert [{e["name"]: e["value"] for e in c["env"]} for c in containers] == [
        {"FERRY_DISK_SIZE": str(MIB), "FERRY_DISK_CLAIM": "web-1-disk-0"},
        {"FERRY_DISK_SIZE": str(2 * MIB), "FERRY_DISK_CLAIM": "web-1-disk-1"},
        {"FERRY_DISK_SIZE": str(3 * MIB), "FERRY_DISK_CLAIM": "web-1-disk-2"},
    ]
    block, filesystem, undecided = (c["args"] for c in containers)
    assert all(c["command"] == ["qemu-nbd"] for c in containers)
    tls = {"name": "nbd-tls", "mountPath": "/etc/ferry/nbd-tls", "readOnly": True}
    assert containers[0]["volumeDevices"] == [{"name": "disk-0", "devicePath": "/dev/ferry-disk-0"}]
    assert containers[0]["volumeMounts"] == [tls]
    assert block == [
        "--format=raw", "--export-name=disk", "--bind=0.0.0.0", "--port=10809", "--persistent", "--shared=8",
        "--discard=unmap", "--object", "tls-creds-x509,id=tls0,dir=/etc/ferry/nbd-tls,endpoint=server,verify-peer=on",
        "--tls-creds=tls0", "/dev/ferry-disk-0",
    ]  # fmt: skip
    assert filesystem[-1] == "/disks/1/disk.img" and "--port=10810" in filesystem
    assert containers[1]["volumeMounts"] == [{"name": "disk-1", "mountPath": "/disks/1"}, tls]
    assert undecided[-1] == "/disks/2/disk.img"  # Filesystem, the Kubernetes default
    sizers = spec["initContainers"]
    assert [(c["name"], c["command"]) for c in sizers] == [
        ("size-1", ["truncate", f"--size=>{2 * MIB}", "/disks/1/disk.img"]),
        ("size-2", ["truncate", f"--size=>{3 * MIB}", "/disks/2/disk.img"]),
    ]
    assert spec["volumes"][2] == {"name": "disk-2", "persistentVolumeClaim": {"claimName": "web-1-disk-2"}}
    assert spec["volumes"][3] == {
        "name": "nbd-tls",
        "secret": {"secretName": "web-1-disk-sink-tls", "defaultMode": 0o440},
    }
    for container in [*containers, *sizers]:
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}  # fmt: skip
    for container in containers:
        assert container["readinessProbe"] == {"tcpSocket": {"port": container["ports"][0]["containerPort"]},
                                               "periodSeconds": 2}  # fmt: skip
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False


def test_a_vm_without_disks_has_no_sink_pod() -> None:
    with pytest.raises(ValueError, match="no disks"):
        sink_pod("p1-1", msgspec.structs.replace(VM, disks=()), "img")


def test_the_sinks_are_the_pods_ports_in_disk_order_and_require_tls_for_the_vms_name() -> None:
    name = "web-1-disk-sink.apps.nbd.ferry.invalid"
    assert disk_sinks(VM, "10.1.2.3") == tuple(
        SinkLocation(disk_key=2000 + i, kind="nbd", size_bytes=(i + 1) * MIB, host="10.1.2.3", port=10809 + i,
                     export="disk", tls_server_name=name)
        for i in range(3)
    )  # fmt: skip
    assert disk_sinks(VM, "10.1.2.3")[0].describe() == "nbds://10.1.2.3:10809/disk"


def pod(status: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-1-disk-sink", **metadata}, "status": status}


READY = [{"type": "Ready", "status": "True"}]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (pod({"phase": "Running", "podIP": "10.0.0.5", "conditions": READY}), Serving("10.0.0.5")),
        (pod({"phase": "Running", "conditions": READY}), Starting("phase Running; no pod IP yet")),
        (pod({"phase": "Running", "podIP": "10.0.0.5"}), Starting("phase Running; not Ready yet")),
        (pod({}), Starting("phase Pending")),
        (
            pod({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                 "reason": "Unschedulable", "message": "0/3 nodes: unbound PVC"}]}),
            Starting("phase Pending; PodScheduled: Unschedulable - 0/3 nodes: unbound PVC"),
        ),
        (
            pod({"phase": "Pending", "containerStatuses": [{"name": "disk-0", "state": {"waiting": {
                "reason": "ImagePullBackOff", "message": "not found"}}}]}),
            Starting("phase Pending; container disk-0 waiting (ImagePullBackOff: not found)"),
        ),
        (
            pod({"phase": "Failed", "reason": "Evicted", "message": "low on disk"}),
            Broken("phase Failed (Evicted): low on disk"),
        ),
        (
            pod({"phase": "Failed", "containerStatuses": [{"name": "disk-1", "state": {"terminated": {
                "reason": "Error", "exitCode": 1}}}]}),
            Broken("phase Failed; container disk-1 terminated (Error)"),
        ),
        (pod({}, deletionTimestamp="2026-01-01T00:00:00Z"), Stopping("the sink pod is being deleted")),
        (None, Gone("the sink pod was deleted")),
    ],
)  # fmt: skip
def test_the_pod_status_says_whether_it_serves(state: dict[str, Any] | None, expected: object) -> None:
    assert sink_state(state) == expected
