"""The disk-sink pod of a target VM: one pod that serves every disk's volume over NBD
while the transfer writes it, and the reading of its status.

Called by the Kubernetes adapter to create the pod, to judge each state a watch shows
it in, and to describe the sinks once it serves. Pure: plain dicts in and out.

Each disk ``i`` gets a container ``disk-<i>`` running ``qemu-nbd`` on port
``10809 + i`` with export name ``disk``, over TLS only, accepting only clients with a
certificate from Ferry's NBD CA (the pod's Secret, :mod:`.sink_tls`, mounted read-only).
A Filesystem volume is mounted at ``/disks/<i>`` and served as ``/disks/<i>/disk.img``
(the file KubeVirt boots from), sized first by the init container ``size-<i>``; a Block
volume is served as the device ``/dev/ferry-disk-<i>``. A disk whose volume mode is left
to the StorageClass is treated as Filesystem, the Kubernetes default. Every container
runs as uid/gid 107 with a read-only root, no capabilities and no service-account token.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferry_kubevirt_writer.domain.sink_names import sink_labels, sink_pod_name, sink_port
from ferry_kubevirt_writer.domain.sink_tls import (
    qemu_nbd_tls_arguments,
    sink_server_name,
    tls_mount,
    tls_volume,
)
from ferry_kubevirt_writer.domain.volumes import volume_name
from ferry_shared import labels
from ferry_shared.migrations import SinkLocation
from ferry_shared.target_vm import TargetDisk, TargetVm

EXPORT_NAME = "disk"
SIZE_ENV = "FERRY_DISK_SIZE"
CLAIM_ENV = "FERRY_DISK_CLAIM"
SINK_USER = 107  # the qemu user of KubeVirt's and CDI's images, so the VM can use the files
NBD_CONNECTIONS = 8  # transfer workers writing one disk at once


def is_block(disk: TargetDisk) -> bool:
    return disk.volume_mode == "Block"


def qemu_nbd_arguments(port: int, target: str) -> list[str]:
    """qemu-nbd serving ``target`` on ``port`` to clients with a certificate from Ferry's NBD CA."""
    return [
        "--format=raw", f"--export-name={EXPORT_NAME}", "--bind=0.0.0.0", f"--port={port}",
        "--persistent", f"--shared={NBD_CONNECTIONS}", "--discard=unmap", *qemu_nbd_tls_arguments(), target,
    ]  # fmt: skip


_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def _image_file(index: int) -> str:
    return f"/disks/{index}/disk.img"


def _mount(index: int) -> dict[str, Any]:
    return {"name": f"disk-{index}", "mountPath": f"/disks/{index}"}


def _claim_volume(vm: TargetVm, index: int) -> dict[str, Any]:
    return {"name": f"disk-{index}", "persistentVolumeClaim": {"claimName": volume_name(vm.name, index)}}


def _sizer(vm: TargetVm, index: int, image: str) -> dict[str, Any]:
    """The init container that sizes a Filesystem disk's image file (growing, never shrinking it)."""
    return {
        "name": f"size-{index}",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["truncate", f"--size=>{vm.disks[index].capacity_bytes}", _image_file(index)],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": _SECURITY_CONTEXT,
        "volumeMounts": [_mount(index)],
    }


def _container(vm: TargetVm, index: int, image: str) -> dict[str, Any]:
    disk = vm.disks[index]
    port = sink_port(index)
    if is_block(disk):
        target = f"/dev/ferry-disk-{index}"
        storage: dict[str, Any] = {
            "volumeDevices": [{"name": f"disk-{index}", "devicePath": target}],
            "volumeMounts": [tls_mount()],
        }
    else:
        target = _image_file(index)
        storage = {"volumeMounts": [_mount(index), tls_mount()]}
    return {
        "name": f"disk-{index}",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["qemu-nbd"],
        "args": qemu_nbd_arguments(port, target),
        "env": [
            {"name": SIZE_ENV, "value": str(disk.capacity_bytes)},
            {"name": CLAIM_ENV, "value": volume_name(vm.name, index)},
        ],
        "ports": [{"name": f"nbd-{index}", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": _SECURITY_CONTEXT,
        **storage,
    }


def sink_pod(migration: str, vm: TargetVm, image: str) -> dict[str, Any]:
    """The ``v1`` Pod body serving every disk of ``vm`` (which must have disks) over TLS with
    the certificate of its Secret (:mod:`.sink_tls`)."""
    if not vm.disks:
        raise ValueError(f"VM '{vm.name}' has no disks to serve")
    indexes = range(len(vm.disks))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": sink_pod_name(vm.name),
            "namespace": vm.namespace,
            "labels": sink_labels(migration, vm),
            "annotations": {labels.MIGRATION: migration, labels.SOURCE_VM_ID: vm.source_vm_id},
        },
        "spec": {
            "restartPolicy": "OnFailure",
            "terminationGracePeriodSeconds": 10,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": SINK_USER,
                "runAsGroup": SINK_USER,
                "fsGroup": SINK_USER,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [_sizer(vm, index, image) for index in indexes if not is_block(vm.disks[index])],
            "containers": [_container(vm, index, image) for index in indexes],
            "volumes": [*(_claim_volume(vm, index) for index in indexes), tls_volume(vm)],
        },
    }


def disk_sinks(vm: TargetVm, pod_ip: str) -> tuple[SinkLocation, ...]:
    """The NBD sink of every disk, once the pod serves at ``pod_ip``."""
    return tuple(
        SinkLocation(
            disk_key=disk.key,
            kind="nbd",
            host=pod_ip,
            port=sink_port(index),
            export=EXPORT_NAME,
            size_bytes=disk.capacity_bytes,
            tls_server_name=sink_server_name(vm),
        )
        for index, disk in enumerate(vm.disks)
    )


# ── reading the pod's status ────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Serving:
    """Running, Ready and with an address: every disk accepts connections."""

    pod_ip: str

    @property
    def why(self) -> str:
        return f"serving at {self.pod_ip}"


@dataclass(frozen=True)
class _Described:
    """A state that ``why`` alone describes (the base of every state but :class:`Serving`)."""

    why: str


class Starting(_Described):
    """Not serving yet; ``why`` says what it waits for."""


class Broken(_Described):
    """It will not serve: it failed or stopped."""


class Stopping(_Described):
    """Being deleted."""


class Gone(_Described):
    """Deleted: the pod does not exist."""


SinkState = Serving | Starting | Broken | Stopping | Gone


def _ready(status: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _container_notes(status: Mapping[str, Any]) -> list[str]:
    notes = []
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        for kind in ("waiting", "terminated"):
            if detail := state.get(kind):
                reason = detail.get("reason") or kind
                message = f": {detail['message']}" if detail.get("message") else ""
                notes.append(f"container {container.get('name')} {kind} ({reason}{message})")
    return notes


def _pending_notes(status: Mapping[str, Any]) -> list[str]:
    notes = [
        f"{c.get('type')}: {c.get('reason') or 'False'}{' - ' + c['message'] if c.get('message') else ''}"
        for c in status.get("conditions") or []
        if c.get("status") == "False" and c.get("type") in ("PodScheduled", "Initialized")
    ]
    return notes + _container_notes(status)


def sink_state(pod: Mapping[str, Any] | None) -> SinkState:
    """What a sink pod (as the API server shows it; None when it does not exist) is doing."""
    if pod is None:
        return Gone("the sink pod was deleted")
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return Stopping("the sink pod is being deleted")
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase in ("Failed", "Succeeded"):
        reason = status.get("reason") or ""
        why = "; ".join([f"phase {phase}{f' ({reason})' if reason else ''}", *_container_notes(status)])
        if status.get("message"):
            why += f": {status['message']}"
        return Broken(why)
    if phase == "Running" and _ready(status) and status.get("podIP"):
        return Serving(str(status["podIP"]))
    notes = _pending_notes(status)
    if phase == "Running":
        notes.insert(0, "not Ready yet" if status.get("podIP") else "no pod IP yet")
    return Starting("; ".join([f"phase {phase}", *notes]))
