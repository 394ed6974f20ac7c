"""The node where kubevirt-writer's disk-sink pods run, played by the tests: no kubelet
runs beside the test control plane, so something must "run" a sink pod for it to serve.

A :class:`SinkNode` watches pods labelled ``ferry.dev/role=disk-sink`` in every
namespace. For each new one it picks a free loopback address (any 127/8 address works
on Linux) as the pod's IP, mounts the pod's volumes as directories and files under its
root (a claim mounted as a directory is ``<root>/<namespace>/<claim>/``, a claim used as a
block device the sparse file ``<root>/<namespace>/<claim>.raw`` of the container's
``FERRY_DISK_SIZE``, a Secret the directory ``<root>/secrets/<pod uid>/<volume>/`` with the
Secret's files as the API server has them), runs the init containers' commands, then
starts each container's own command and arguments (``qemu-nbd`` with its TLS options)
with those paths in place of the mount paths and the pod's address in place of
``0.0.0.0``; then it writes the pod's status as a kubelet would (Running, Ready, its IP). When the
pod is deleted its qemu-nbd processes stop; the files stay, so tests can read what was
written. It also plays the PVC-protection controller for Ferry's claims: a deleted
claim that no sink pod uses loses its ``kubernetes.io/pvc-protection`` finalizer and
so really goes away.
"""

import functools
import json
import logging
import re
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from ferry_peers.processes import ManagedProcess
from ferry_shared import labels
from ferry_shared.kubernetes.list_watch import Body, ListWatch, body
from ferry_testpeers.pod_files import free_loopback_address, project_secret

log = logging.getLogger(__name__)

SINK_SELECTOR = f"{labels.ROLE}={labels.SINK_ROLE}"
FERRY_SELECTOR = ",".join(f"{key}={value}" for key, value in labels.MANAGED_BY_FERRY.items())
PVC_PROTECTION = "kubernetes.io/pvc-protection"
MERGE_PATCH = "application/merge-patch+json"
WATCH_SECONDS = 30
SERVE_WITHIN = 20.0


@dataclass(frozen=True)
class ServedPod:
    """A sink pod the node ran: where it served which claims."""

    namespace: str
    name: str
    ip: str
    ports: tuple[int, ...]
    claims: tuple[str, ...]


class _Follower:
    """Lists, then watches, one kind of object in every namespace; hands each state to
    ``handle(event_type, object)`` in its own thread until stopped."""

    def __init__(
        self,
        name: str,
        list_call: Callable[..., Any],
        selector: str,
        handle: Callable[[str, Body], None],
        errors: list[BaseException],
    ) -> None:
        self._name = name
        self._handle = handle
        self._errors = errors
        self._feed = ListWatch(
            name,
            list_call,
            query={"label_selector": selector},
            decode=body,
            listed=self._listed,
            changed=self._deliver,
            failed=self._failed,
            watch_seconds=WATCH_SECONDS,
        )

    def start(self) -> None:
        self._feed.start()

    def stop(self) -> None:
        self._feed.stop()
        self._feed.join(10)

    def _failed(self, error: Exception) -> None:
        log.error("the sink node's %s stopped", self._name, exc_info=error)
        self._errors.append(error)

    def _listed(self, items: list[Body]) -> None:
        for item in items:
            self._deliver("ADDED", item)

    def _deliver(self, event_type: str, obj: Body) -> None:
        try:
            self._handle(event_type, obj)
        except Exception as error:
            log.exception("the sink node failed on %s %s", event_type, obj.get("metadata", {}).get("name"))
            self._errors.append(error)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _env(container: Body) -> dict[str, str]:
    return {str(e["name"]): str(e.get("value", "")) for e in container.get("env") or []}


def _is_claim(volume: Body) -> bool:
    return "persistentVolumeClaim" in volume


def _accepting(ip: str, port: int) -> bool | None:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return None


class SinkNode:
    """Runs disk-sink pods on loopback addresses with real qemu-nbd servers."""

    def __init__(self, api: ApiClient, root: Path, *, qemu_nbd: str = "qemu-nbd") -> None:
        self.root = root
        self._core = CoreV1Api(api)
        self._qemu_nbd = qemu_nbd
        self._lock = threading.Lock()
        self._serving: dict[str, list[ManagedProcess]] = {}  # pod uid → its servers
        self._claims_in_use: dict[str, set[tuple[str, str]]] = {}  # pod uid → (namespace, claim)
        self._seen: list[ServedPod] = []
        self.errors: list[BaseException] = []
        self._followers = [
            _Follower("sink pods", self._core.list_pod_for_all_namespaces, SINK_SELECTOR, self._on_pod, self.errors),
            _Follower(
                "ferry claims",
                self._core.list_persistent_volume_claim_for_all_namespaces,
                FERRY_SELECTOR,
                self._on_claim,
                self.errors,
            ),
        ]

    # ── public helpers ──────────────────────────────────────────────────────────────

    def disk_path(self, namespace: str, claim: str) -> Path:
        """The file behind claim ``namespace/claim``: its block device, or the ``disk.img`` a
        sink pod wrote on it as a file system."""
        device = self.root / namespace / f"{claim}.raw"
        return device if device.exists() else self.root / namespace / claim / "disk.img"

    @property
    def pods_seen(self) -> list[ServedPod]:
        """Every sink pod the node ran, in order."""
        with self._lock:
            return list(self._seen)

    def serving(self) -> int:
        """How many pods are served now."""
        with self._lock:
            return len(self._serving)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for follower in self._followers:
            follower.start()

    def stop(self) -> None:
        """Stop watching and stop every qemu-nbd (the files stay)."""
        for follower in self._followers:
            follower.stop()
        with self._lock:
            servers = [server for group in self._serving.values() for server in group]
            self._serving.clear()
        for server in servers:
            server.stop()

    def check(self) -> None:
        """Fail when the node could not play its part for some object."""
        if self.errors:
            raise AssertionError(f"the sink node failed: {self.errors!r}")

    def __enter__(self) -> "SinkNode":
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
        if kind is None:
            self.check()

    # ── pods ────────────────────────────────────────────────────────────────────────

    def _on_pod(self, event_type: str, pod: Body) -> None:
        metadata, uid = pod["metadata"], str(pod["metadata"]["uid"])
        if event_type == "DELETED" or metadata.get("deletionTimestamp"):
            self._release(uid)
            return
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        with self._lock:
            known = uid in self._serving
        if known or phase != "Pending":  # served already, or a pod of an earlier node
            return
        self._run_pod(pod)

    def _run_pod(self, pod: Body) -> None:
        namespace, name, uid = pod["metadata"]["namespace"], pod["metadata"]["name"], pod["metadata"]["uid"]
        containers = pod["spec"]["containers"]
        ports = [int(c["ports"][0]["containerPort"]) for c in containers]
        ip = self._free_address(ports)
        servers: list[ManagedProcess] = []
        volumes: dict[str, Body] = {str(v["name"]): v for v in pod["spec"].get("volumes") or []}
        claims = [str(v["persistentVolumeClaim"]["claimName"]) for v in volumes.values() if _is_claim(v)]
        with self._lock:
            self._serving[uid] = servers
        for init in pod["spec"].get("initContainers") or []:
            argv = self._argv(init, self._mounts(namespace, uid, init, volumes), ip)
            subprocess.run(argv, check=True, capture_output=True, timeout=SERVE_WITHIN)
        for container, port in zip(containers, ports, strict=True):
            argv = self._argv(container, self._mounts(namespace, uid, container, volumes), ip)
            log_path = self.root / "logs" / f"{namespace}.{name}.{container['name']}.log"
            server = ManagedProcess(f"qemu-nbd {namespace}/{name}/{container['name']}", argv, log_path)
            servers.append(server)
            server.wait_until(functools.partial(_accepting, ip, port), timeout=SERVE_WITHIN, what="serving")
        with self._lock:
            self._claims_in_use[uid] = {(namespace, claim) for claim in claims}
            self._seen.append(ServedPod(namespace, name, ip, tuple(ports), tuple(claims)))
        try:
            self._core.patch_namespaced_pod_status(
                name, namespace, self._running_status(pod, ip), _content_type=MERGE_PATCH
            )
        except ApiException as error:
            if error.status != 404:
                raise
            self._release(uid)  # deleted before it ran

    def _mounts(self, namespace: str, uid: str, container: Body, volumes: dict[str, Body]) -> dict[str, Path]:
        """The container's mount and device paths → where they are on this node."""
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if "persistentVolumeClaim" in volume:
                path = self.root / namespace / str(volume["persistentVolumeClaim"]["claimName"])
                path.mkdir(parents=True, exist_ok=True)
            elif "secret" in volume:
                path = self._secret_volume(namespace, uid, mount["name"], volume["secret"])
            else:
                raise ValueError(f"the sink node cannot mount volume {volume}")
            mounts[str(mount["mountPath"])] = path
        for device in container.get("volumeDevices") or []:
            claim = str(volumes[device["name"]]["persistentVolumeClaim"]["claimName"])
            path = self.root / namespace / f"{claim}.raw"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # the provisioner's part: a block device of the disk's size
                with path.open("wb") as file:
                    file.truncate(int(_env(container)["FERRY_DISK_SIZE"]))
            mounts[str(device["devicePath"])] = path
        return mounts

    def _secret_volume(self, namespace: str, uid: str, volume: str, source: Body) -> Path:
        """The Secret's files, as the kubelet projects them (read from the API server)."""
        return project_secret(self._core, namespace, source, self.root / "secrets" / uid / volume)

    def _argv(self, container: Body, mounts: dict[str, Path], ip: str) -> list[str]:
        """The container's command and arguments, with this node's paths and the pod's address."""
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if argv and argv[0] == "qemu-nbd":
            argv[0] = self._qemu_nbd
        located = []
        for original in argv:
            arg = original
            for inside, outside in mounts.items():
                arg = re.sub(rf"(?<![^=,>]){re.escape(inside)}(?=/|,|$)", str(outside), arg)
            located.append(arg.replace("--bind=0.0.0.0", f"--bind={ip}"))
        return located

    @staticmethod
    def _running_status(pod: Body, ip: str) -> Body:
        now = _now()
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        containers = [
            {"name": c["name"], "image": c["image"], "imageID": "", "ready": True, "started": True,
             "restartCount": 0, "state": {"running": {"startedAt": now}}}
            for c in pod["spec"]["containers"]
        ]  # fmt: skip
        return {
            "status": {
                "phase": "Running",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "hostIP": "127.0.0.1",
                "startTime": now,
                "conditions": conditions,
                "containerStatuses": containers,
            }
        }

    def _release(self, uid: str) -> None:
        with self._lock:
            servers = self._serving.pop(uid, [])
            claims = self._claims_in_use.pop(uid, set())
        for server in servers:
            server.stop()
        for namespace, name in claims:  # a claim deleted while the pod ran is free now
            try:
                response: Any = self._core.read_namespaced_persistent_volume_claim(
                    name, namespace, _preload_content=False
                )
            except ApiException as error:
                if error.status == 404:
                    continue
                raise
            try:
                self._on_claim("MODIFIED", json.loads(response.data))
            finally:
                response.release_conn()

    def _free_address(self, ports: list[int]) -> str:
        """A loopback address on which every port is free, away from 127.0.0.x."""
        with self._lock:
            taken = {pod.ip for pod in self._seen}
        return free_loopback_address(ports, taken)

    # ── claims (the PVC-protection controller's part) ───────────────────────────────

    def _on_claim(self, event_type: str, claim: Body) -> None:
        metadata = claim["metadata"]
        finalizers = list(metadata.get("finalizers") or [])
        if event_type == "DELETED" or not metadata.get("deletionTimestamp") or PVC_PROTECTION not in finalizers:
            return
        with self._lock:
            in_use = any((metadata["namespace"], metadata["name"]) in used for used in self._claims_in_use.values())
        if in_use:  # looked at again when its pod goes
            return
        remaining = [f for f in finalizers if f != PVC_PROTECTION] or None
        try:
            self._core.patch_namespaced_persistent_volume_claim(
                metadata["name"], metadata["namespace"], {"metadata": {"finalizers": remaining}},
                _content_type=MERGE_PATCH,
            )  # fmt: skip
        except ApiException as error:
            if error.status != 404:  # else: gone meanwhile
                raise
