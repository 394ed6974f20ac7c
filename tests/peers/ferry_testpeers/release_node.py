"""The node where a Helm release's own pods run, played by the tests: no kubelet, scheduler
or controllers run beside the test control plane, so :class:`ReleaseNode` does their part
for the release's Deployments and StatefulSets.

For a workload it reads the pod template from the API server (what the chart rendered, as
stored), creates the Pod (the ReplicaSet or StatefulSet controller's part; for a StatefulSet
also a claim per volumeClaimTemplate) and runs each container as a kubelet would:

- the image the container names must be one the node has (:class:`NodeImage`: Ferry's built
  images, by reference or by digest, and nats-server for the chart's NATS), else the pod
  fails as an image pull would; its root filesystem is entered with ``chroot`` as the pod's
  ``runAsUser``/``runAsGroup`` with ``fsGroup`` as a supplementary group, in a mount and PID
  namespace of its own, read-only when the container asks for ``readOnlyRootFilesystem``;
- its command is Kubernetes' combination of the container's ``command``/``args`` and the
  image's ``Entrypoint``/``Cmd``;
- its volumes are mounted at their paths: Secrets projected from the API server (items,
  modes, group ``fsGroup``), emptyDirs, claims as directories that outlive the pod, and the
  service-account token (a TokenRequest for the pod's account), the cluster CA and the
  namespace when the pod mounts a token;
- its environment is the image's, then the container's (values, field references, Secret
  keys), then ``KUBERNETES_SERVICE_HOST``/``PORT`` of the test API server, and ``HOSTNAME``;
- its ``/etc/hosts`` names each Service of the namespace that selects a running pod (and a
  headless Service's per-pod names), so the chart's DNS names resolve.

One liberty: every pod shares the host's network, so each gets a loopback address of its
own as its pod IP, and listening on ``0.0.0.0`` — in the environment, the arguments and
``*.conf`` files of Secret volumes — becomes listening on that address. The node waits for
each container's readiness probe (an ``httpGet`` on the pod IP), then writes the pod's status
Running and Ready. Stopping a pod sends SIGTERM (its preStop hooks are not run) and deletes it.
"""

import base64
import json
import os
import shlex
import shutil
import stat
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException

from ferry_peers.processes import ManagedProcess
from ferry_testpeers.kube import KubeControlPlane
from ferry_testpeers.pod_files import Body, free_loopback_address, project_secret

NODE_NAME = "ferry-test-node"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class NodeImage:
    """An image the node can run: its root filesystem and its config's defaults."""

    rootfs: Path
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def static_binary_image(binary: Path, directory: Path, *, inside: str) -> NodeImage:
    """An image holding only ``binary`` (statically linked) at ``inside``, like the
    upstream ``nats`` image holds ``nats-server``."""
    rootfs = directory / "rootfs"
    target = rootfs / inside.lstrip("/")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target)
        for folder in ("etc", "tmp", "proc"):
            (rootfs / folder).mkdir(exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
    return NodeImage(rootfs=rootfs)


@dataclass
class RunningPod:
    """A pod the node runs: its name, address, labels and containers' processes."""

    name: str
    namespace: str
    ip: str
    labels: dict[str, str]
    processes: list[ManagedProcess]
    directory: Path

    @property
    def log(self) -> str:
        return "\n".join(process.log_path.read_text(errors="replace") for process in self.processes)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _raw(response: Any) -> Body:
    try:
        return dict(json.loads(response.data))
    finally:
        response.release_conn()


def within(rootfs: Path, path: str) -> Path:
    """Where ``path`` of the image is on this machine: its symbolic links (``/var/run`` → ``/run``)
    resolved inside ``rootfs``, never out of it."""
    current, parts, hops = rootfs, list(PurePosixPath(path).parts[1:]), 0
    while parts:
        part = parts.pop(0)
        candidate = current / part
        if part == "..":
            current = current.parent if current != rootfs else rootfs
        elif candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise RuntimeError(f"{path} loops through symbolic links in {rootfs}")
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                current, parts = rootfs, [*target.parts[1:], *parts]
            else:
                parts = [*target.parts, *parts]
        elif part != ".":
            current = candidate
    return current


def _selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in (selector or {}).items())


class ReleaseNode:
    """Runs the pods of one namespace's Deployments and StatefulSets from the node's images."""

    def __init__(self, kube: KubeControlPlane, api: ApiClient, namespace: str, root: Path,
                 images: Mapping[str, NodeImage]) -> None:  # fmt: skip
        self._kube = kube
        # Any: the node reads and writes plain JSON bodies, which the typed client's stubs do not describe.
        self._core: Any = CoreV1Api(api)
        self._apps: Any = AppsV1Api(api)
        self.namespace = namespace
        self.root = root
        self._images = dict(images)
        self.pods: dict[str, RunningPod] = {}
        self._started = 0

    # ── workloads ───────────────────────────────────────────────────────────────────

    def run_deployment(self, name: str, *, timeout: float = 90.0) -> RunningPod:
        """One pod of Deployment ``name``, ready."""
        deployment = _raw(self._apps.read_namespaced_deployment(name, self.namespace, _preload_content=False))
        template = deployment["spec"]["template"]
        self._started += 1
        pod_name = f"{name}-{deployment['metadata']['generation']}-{self._started}"
        return self._run(pod_name, template, timeout=timeout)

    def run_stateful_set(self, name: str, ordinal: int = 0, *, timeout: float = 90.0) -> RunningPod:
        """Pod ``ordinal`` of StatefulSet ``name`` with its claims (made once, kept across pods), ready."""
        statefulset = _raw(self._apps.read_namespaced_stateful_set(name, self.namespace, _preload_content=False))
        pod_name = f"{name}-{ordinal}"
        claims: dict[str, str] = {}
        for template in statefulset["spec"].get("volumeClaimTemplates") or []:
            claim = f"{template['metadata']['name']}-{pod_name}"
            claims[template["metadata"]["name"]] = claim
            body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": template["spec"],
                    "metadata": {"name": claim, "labels": template["metadata"].get("labels") or {}}}  # fmt: skip
            try:
                self._core.create_namespaced_persistent_volume_claim(self.namespace, body)
            except ApiException as error:
                if error.status != 409:
                    raise
        template = statefulset["spec"]["template"]
        claimed = [{"name": name, "persistentVolumeClaim": {"claimName": claim}} for name, claim in claims.items()]
        template["spec"]["volumes"] = [*(template["spec"].get("volumes") or []), *claimed]
        return self._run(pod_name, template, timeout=timeout)

    def stop(self, pod: RunningPod) -> None:
        """SIGTERM the pod's containers, then delete it."""
        for process in pod.processes:
            process.stop(timeout=30)
        self.pods.pop(pod.name, None)
        try:
            self._core.delete_namespaced_pod(pod.name, self.namespace, grace_period_seconds=0)
        except ApiException as error:
            if error.status != 404:
                raise

    def stop_all(self) -> None:
        for pod in reversed(list(self.pods.values())):
            self.stop(pod)

    def claim_path(self, claim: str) -> Path:
        """Where claim ``claim`` of the namespace keeps its files on this node."""
        return self.root / "claims" / claim

    # ── one pod ─────────────────────────────────────────────────────────────────────

    def _run(self, pod_name: str, template: Body, *, timeout: float) -> RunningPod:
        spec = template["spec"]
        labels = dict(template["metadata"].get("labels") or {})
        ports = [int(p["containerPort"]) for c in spec["containers"] for p in c.get("ports") or []]
        ip = free_loopback_address(ports, {pod.ip for pod in self.pods.values()})
        pod_body = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod_name, "labels": labels,
                                 "annotations": template["metadata"].get("annotations") or {}},
                    "spec": {**spec, "nodeName": NODE_NAME}}  # fmt: skip
        created = self._core.create_namespaced_pod(self.namespace, pod_body)
        directory = self.root / "pods" / pod_name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        pod = RunningPod(pod_name, self.namespace, ip, labels, [], directory)
        self.pods[pod_name] = pod
        try:
            context = spec.get("securityContext") or {}
            volumes = self._volumes(pod, spec, group=int(context.get("fsGroup", 0)))
            hosts = self._hosts_file(pod)
            for container in spec["containers"]:
                process = self._start_container(pod, spec, container, volumes, hosts)
                pod.processes.append(process)
                self._wait_ready(pod, container, process, timeout)
        except BaseException:
            self.stop(pod)
            raise
        status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1", "startTime": _now(),
                  "conditions": [{"type": kind, "status": "True", "lastTransitionTime": _now()}
                                 for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]}  # fmt: skip
        self._core.patch_namespaced_pod_status(
            created.metadata.name, self.namespace, {"status": status}, _content_type=MERGE_PATCH
        )
        return pod

    def _volumes(self, pod: RunningPod, spec: Body, *, group: int) -> dict[str, Path]:
        """Each volume of the pod → the directory on this node that is mounted for it."""
        found: dict[str, Path] = {}
        uid = int((spec.get("securityContext") or {}).get("runAsUser", 0))
        for volume in spec.get("volumes") or []:
            name = str(volume["name"])
            if "secret" in volume:
                folder = pod.directory / "volumes" / name
                found[name] = project_secret(self._core, self.namespace, volume["secret"], folder, group=group)
                found[name].chmod(0o755)
            elif "emptyDir" in volume:
                found[name] = self._owned(pod.directory / "volumes" / name, uid, group)
            elif "persistentVolumeClaim" in volume:
                found[name] = self._owned(self.claim_path(volume["persistentVolumeClaim"]["claimName"]), uid, group)
            else:
                raise ValueError(f"the release node cannot mount volume {volume}")
        if self._mounts_token(spec):
            found["kube-api-access"] = self._service_account_files(pod, str(spec.get("serviceAccountName", "default")))
        return found

    @staticmethod
    def _owned(path: Path, uid: int, group: int) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, uid, group)
        path.chmod(0o2770 if group else 0o700)
        return path

    def _mounts_token(self, spec: Body) -> bool:
        if "automountServiceAccountToken" in spec:
            return bool(spec["automountServiceAccountToken"])
        account = self._core.read_namespaced_service_account(spec.get("serviceAccountName", "default"), self.namespace)
        return account.automount_service_account_token is not False

    def _service_account_files(self, pod: RunningPod, account: str) -> Path:
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": 3600}}  # fmt: skip
        token = str(self._core.create_namespaced_service_account_token(account, self.namespace, request).status.token)
        folder = pod.directory / "volumes" / "kube-api-access"
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in (("token", token), ("ca.crt", self._kube.ca.cert_path.read_text()),
                              ("namespace", self.namespace)):  # fmt: skip
            (folder / name).write_text(content)
            (folder / name).chmod(0o644)
        folder.chmod(0o755)
        return folder

    def _hosts_file(self, pod: RunningPod) -> Path:
        lines = ["127.0.0.1\tlocalhost", f"{pod.ip}\t{pod.name}"]
        suffix = f"{self.namespace}.svc"
        for service in self._core.list_namespaced_service(self.namespace).items:
            name = service.metadata.name
            for other in self.pods.values():
                if not _selects(service.spec.selector, other.labels):
                    continue
                if service.spec.cluster_ip == "None":
                    lines.append(f"{other.ip}\t{other.name}.{name}.{suffix} {other.name}.{name}.{suffix}.cluster.local")
                else:
                    names = f"{name}.{suffix} {name}.{suffix}.cluster.local {name}.{self.namespace} {name}"
                    lines.append(f"{other.ip}\t{names}")
                    break  # one address stands for the Service
        path = pod.directory / "hosts"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)
        return path

    def _start_container(self, pod: RunningPod, spec: Body, container: Body, volumes: Mapping[str, Path],
                         hosts: Path) -> ManagedProcess:  # fmt: skip
        reference = str(container["image"])
        if reference not in self._images:
            raise RuntimeError(f"{pod.name}: image {reference} is not on this node (ErrImagePull); it has "
                               f"{sorted(self._images)}")  # fmt: skip
        image = self._images[reference]
        context = {**(spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
        uid, gid = int(context.get("runAsUser", 0)), int(context.get("runAsGroup", 0))
        group = int((spec.get("securityContext") or {}).get("fsGroup", gid))
        command = container.get("command")
        argv = [*(command or image.entrypoint), *(container.get("args") or ([] if command else image.cmd))]
        argv = [arg.replace("0.0.0.0", pod.ip) for arg in argv]
        environment = self._environment(pod, image, container)
        mounts = [(hosts, "/etc/hosts")]
        for mount in container.get("volumeMounts") or []:
            source = volumes[str(mount["name"])]
            self._listen_on_pod_address(source, pod.ip)
            mounts.append((source / str(mount.get("subPath", "")) if mount.get("subPath") else source,
                           str(mount["mountPath"])))  # fmt: skip
        if "kube-api-access" in volumes:
            mounts.append((volumes["kube-api-access"], TOKEN_DIR))
        script = self._enter_script(image.rootfs, mounts, read_only=bool(context.get("readOnlyRootFilesystem")))
        enter = 'exec env -i "$@"'  # the image's environment only, then chroot (a host tool) runs argv inside
        chroot = [shutil.which("chroot") or "chroot", f"--userspec={uid}:{gid}", f"--groups={group}", str(image.rootfs)]
        wrapper = ["unshare", "--mount", "--pid", "--fork", "--kill-child=SIGTERM", "--propagation", "private",
                   "sh", "-c", f"{script} && {enter}", str(image.rootfs),
                   *(f"{key}={value}" for key, value in environment.items()), *chroot, *argv]  # fmt: skip
        log = self.root / "logs" / f"{pod.name}.{container['name']}.log"
        return ManagedProcess(f"{pod.name}/{container['name']}", wrapper, log, signal_group=True)

    @staticmethod
    def _listen_on_pod_address(source: Path, ip: str) -> None:
        for config in source.glob("*.conf") if source.is_dir() else []:
            text = config.read_text()
            if "0.0.0.0" in text:
                mode = stat.S_IMODE(config.stat().st_mode)
                config.write_text(text.replace("0.0.0.0", ip))
                config.chmod(mode)

    @staticmethod
    def _enter_script(rootfs: Path, mounts: list[tuple[Path, str]], *, read_only: bool) -> str:
        """Shell commands that mount the pod's files into ``rootfs`` ($0) inside the new mount namespace."""
        points = []
        for source, inside in mounts:  # mount points exist in the shared tree, made before it goes read-only
            point = within(rootfs, inside)
            if source.is_dir():
                point.mkdir(parents=True, exist_ok=True)
            else:
                point.parent.mkdir(parents=True, exist_ok=True)
                point.touch(exist_ok=True)
            points.append((source, point))
        steps = ['mount --bind "$0" "$0"']
        if read_only:
            steps.append('mount -o remount,bind,ro "$0"')
        steps += [f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(point))}" for source, point in points]
        steps.append('mount -t proc proc "$0/proc"')
        return " && ".join(steps)

    def _environment(self, pod: RunningPod, image: NodeImage, container: Body) -> dict[str, str]:
        environment = {"PATH": DEFAULT_PATH, **image.env, "HOSTNAME": pod.name}
        fields = {"metadata.name": pod.name, "metadata.namespace": self.namespace, "status.podIP": pod.ip,
                  "spec.nodeName": NODE_NAME}  # fmt: skip
        for entry in container.get("env") or []:
            source = entry.get("valueFrom")
            if source is None:
                value = str(entry.get("value", ""))
            elif "fieldRef" in source:
                value = fields[source["fieldRef"]["fieldPath"]]
            elif "secretKeyRef" in source:
                reference = source["secretKeyRef"]
                secret = self._core.read_namespaced_secret(reference["name"], self.namespace)
                value = base64.b64decode((secret.data or {})[reference["key"]]).decode()
            else:
                raise ValueError(f"the release node cannot resolve env {entry}")
            environment[str(entry["name"])] = pod.ip if value == "0.0.0.0" else value
        host, port = self._kube.url.removeprefix("https://").rsplit(":", 1)
        environment |= {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
        return environment

    def _wait_ready(self, pod: RunningPod, container: Body, process: ManagedProcess, timeout: float) -> None:
        probe = container.get("readinessProbe") or {}
        get = probe.get("httpGet")
        if not get:
            raise ValueError(f"{pod.name}/{container['name']} has no httpGet readiness probe")
        port = get["port"]
        if isinstance(port, str) and not port.isdigit():
            port = next(p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port)
        url = f"http://{pod.ip}:{port}{get['path']}"

        def ready() -> bool | None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return True if 200 <= response.status < 400 else None
            except (urllib.error.URLError, OSError):
                return None

        process.wait_until(ready, timeout=timeout, what=f"ready ({url})")
