"""What the end-to-end tests share: driving the ``ferry`` CLI and HTTP APIs of a stack of
service processes, following the planner's server-sent events, and searching every
place a secret could leak to."""

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from ferry_peers.nats_server import NatsServer
from ferry_peers.processes import stop_all
from ferry_peers.security import LocalSecurity
from ferry_peers.services import SERVICE_MODULES, ServiceProcess, start_service
from ferry_peers.vcsim import Vcsim
from ferry_shared import subjects
from ferry_testpeers.waiting import wait_for


@dataclass
class Stack:
    """NATS, the simulator and some Ferry services as processes, driven like a user would."""

    nats: NatsServer
    vcsim: Vcsim
    services: dict[str, ServiceProcess]
    work_dir: Path
    responses: list[str] = field(default_factory=list)

    @property
    def planner(self) -> ServiceProcess:
        return self.services["planner"]

    @property
    def inventory(self) -> ServiceProcess:
        return self.services["inventory"]

    @property
    def security(self) -> LocalSecurity:
        """The stack's key material (what ``start_service`` gave its processes)."""
        return self.nats.security

    def cli(self, *args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FERRY_PLANNER_URL": self.planner.http_url, "FERRY_INVENTORY_URL": self.inventory.http_url,
               **self.security.client_env()}  # fmt: skip
        env.pop("FERRY_TOKEN", None)
        result = subprocess.run(
            [sys.executable, "-c", "from ferry_cli.main import app; app()", *args],
            input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False,
        )  # fmt: skip
        self.responses += [result.stdout, result.stderr]
        return result

    def ok(self, *args: str, stdin: str = "") -> str:
        """Run the CLI and return its output; fail the test with its error otherwise."""
        result = self.cli(*args, stdin=stdin)
        assert result.returncode == 0, f"ferry {' '.join(args)} failed: {result.stderr or result.stdout}"
        return result.stdout

    def get(self, service: ServiceProcess, path: str) -> Any:
        response = httpx.get(f"{service.http_url}/api/v1{path}", headers=self.security.api_headers(), timeout=10)
        self.responses.append(response.text)
        return response.json()

    def provider(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(self.planner, f"/providers/{name}")
        return found

    def wait_provider(self, name: str, phase: str) -> dict[str, Any]:
        return wait_for(
            lambda: status if (status := self.provider(name)["status"])["phase"] == phase else None,
            timeout=30,
            what=f"provider {name} to be {phase}",
        )

    def add_vcenter(self, name: str, *, password: str, thumbprint: str) -> subprocess.CompletedProcess[str]:
        return self.cli(
            "provider", "add", name, "--type", "vsphere", "--url", self.vcsim.sdk_url,
            "--username", self.vcsim.username, "--thumbprint", thumbprint, "--password-stdin", stdin=password + "\n",
        )  # fmt: skip

    def logs(self) -> list[str]:
        return [path.read_text(errors="replace") for path in (self.work_dir / "logs").glob("*.log")]


@contextlib.contextmanager
def running_stack(
    nats: NatsServer, simulator: Vcsim, work_dir: Path, names: Iterable[str] = SERVICE_MODULES
) -> Iterator[Stack]:
    """The services ``names`` started as processes on ``nats`` (stopped on exit), with ``simulator`` as the vCenter."""
    services: dict[str, ServiceProcess] = {}
    try:
        for name in names:
            services[name] = start_service(name, nats, work_dir)
        yield Stack(nats, simulator, services, work_dir)
    finally:
        stop_all(service.process for service in services.values())


class EventLog:
    """Server-sent events from the planner, collected by a background thread."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self._thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", url, headers=headers, timeout=None) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
        except httpx.HTTPError:
            return  # the planner stopped at the end of the test

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in list(self.events) if event.get("kind") == kind]


def source_disks(simulator: Vcsim, vm_name: str) -> list[dict[str, Any]]:
    """The simulator's view of a VM's disks (with the flat file's path on this machine), in key order."""
    found = httpx.get(f"{simulator.control_url}/vms/{vm_name}", timeout=10).json()
    return sorted(found["disks"], key=lambda disk: disk["key"])


def key_material(kubeconfig: Path) -> list[str]:
    """Distinctive lines of the client key the kubeconfig points at."""
    document = yaml.safe_load(kubeconfig.read_text())
    key_path = Path(document["users"][0]["user"]["client-key"])
    lines = [line for line in key_path.read_text().splitlines() if line and not line.startswith("-----")]
    return lines[:2]


def nats_stream_dump(nats: NatsServer) -> str:
    """Every event and command JetStream stored, as text (the streams' block files).

    The credentials bucket is deliberately not included: it is where secrets live."""
    chunks = []
    for stream in (subjects.EVENTS_STREAM, subjects.COMMANDS_STREAM):
        found = list(nats.store_dir.rglob(f"streams/{stream}/msgs/*.blk"))
        assert found or stream == subjects.COMMANDS_STREAM, f"no block files for {stream}"
        chunks += [path.read_bytes().decode("latin-1") for path in found]
    return "\n".join(chunks)


def stored_events(nats: NatsServer) -> list[dict[str, Any]]:
    """Every event in the events stream, decoded (read from the server, in order)."""
    import asyncio  # noqa: PLC0415

    from ferry_shared.bus.connection import connect  # noqa: PLC0415

    async def read() -> list[dict[str, Any]]:
        connection = await connect(nats.url, name="ferry-test", **nats.connect_options())
        try:
            js = connection.jetstream()
            info = await js.stream_info(subjects.EVENTS_STREAM)
            found = []
            for sequence in range(info.state.first_seq, info.state.last_seq + 1):
                message = await js.get_msg(subjects.EVENTS_STREAM, sequence)
                if message.data:
                    found.append(json.loads(message.data))
            return found
        finally:
            await connection.close()

    return asyncio.run(read())


def target_namespace(api: ApiClient, namespace: str, *, storage_class: str = "standard", nad: str = "vlan-100") -> None:
    """A target namespace with a Multus network, and a cluster StorageClass (which other
    modules' fixtures may have created already on the session's control plane)."""
    try:
        metadata = client.V1ObjectMeta(name=storage_class)
        storage = client.V1StorageClass(metadata=metadata, provisioner="kubernetes.io/no-provisioner")
        client.StorageV1Api(api).create_storage_class(storage)
    except ApiException as error:
        if error.status != 409:
            raise
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    body = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": nad, "namespace": namespace}, "spec": {"config": "{}"}}  # fmt: skip
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "k8s.cni.cncf.io", "v1", namespace, "network-attachment-definitions", body
    )
