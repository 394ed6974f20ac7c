"""A whole Ferry stack on one machine: NATS, the simulated vCenter and the four services.

Used by ``ferry demo`` and the end-to-end tests; every process logs to a file in the
stack's work folder and is stopped with SIGTERM (then SIGKILL) on the way out.
"""

import contextlib
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ferry_cli.local.nats_server import NatsServer, start_nats_server
from ferry_cli.local.ports import free_port
from ferry_cli.local.processes import ManagedProcess, stop_all
from ferry_cli.local.vcsim import Vcsim, start_vcsim

SERVICE_MODULES = {
    "inventory": "ferry_inventory",
    "planner": "ferry_planner",
    "transfer": "ferry_transfer",
    "kubevirt-writer": "ferry_kubevirt_writer",
}


@dataclass
class ServiceProcess:
    """One running Ferry service and its HTTP address."""

    name: str
    process: ManagedProcess
    http_url: str


@dataclass
class LocalStack:
    """Everything ``start_local_stack`` started."""

    work_dir: Path
    nats: NatsServer
    vcsim: Vcsim
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def target_dir(self) -> Path:
        """The folder for a local target provider (created by :func:`local_stack`)."""
        return self.work_dir / "target"

    def stop(self) -> None:
        stop_all(service.process for service in self.services.values())
        self.vcsim.stop()
        self.nats.stop()


def _ready(url: str) -> bool | None:
    try:
        return True if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200 else None
    except httpx.HTTPError:
        return None


DEMO_PORTS = {"planner": 8081, "inventory": 8082, "transfer": 8083, "kubevirt-writer": 8084}
"""Fixed ports for ``ferry demo``, so the CLI's defaults reach it."""


def start_service(
    name: str, nats_url: str, work_dir: Path, *, port: int | None = None, timeout: float = 60.0
) -> ServiceProcess:
    """Start one service as ``python -m <package>`` and wait until it is ready."""
    port = port or free_port()
    env = {"FERRY_NATS_URL": nats_url, "FERRY_HTTP_PORT": str(port), "FERRY_HTTP_HOST": "127.0.0.1"}
    argv = [sys.executable, "-m", SERVICE_MODULES[name]]
    process = ManagedProcess(name, argv, work_dir / "logs" / f"{name}.log", env=env)
    url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: _ready(url), timeout=timeout, what="ready")
    return ServiceProcess(name=name, process=process, http_url=url)


@contextlib.contextmanager
def local_stack(
    work_dir: Path, *, ports: dict[str, int] | None = None, model: dict[str, Any] | None = None
) -> Iterator[LocalStack]:
    """Start NATS, the simulator (with ``model``, or its default one) and every service
    (on ``ports`` or free ones); stop them all on exit. ``work_dir`` is made absolute, as
    the services get paths in it; ``stack.target_dir`` is created for a local target."""
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        nats = start_nats_server(work_dir / "nats")
        cleanup.callback(nats.stop)
        vcsim = start_vcsim(work_dir / "vcsim", password=secrets.token_urlsafe(16), model=model)
        cleanup.callback(vcsim.stop)
        stack = LocalStack(work_dir=work_dir, nats=nats, vcsim=vcsim)
        stack.target_dir.mkdir(exist_ok=True)
        cleanup.callback(lambda: stop_all(service.process for service in stack.services.values()))
        for name in SERVICE_MODULES:
            stack.services[name] = start_service(name, nats.url, work_dir, port=(ports or {}).get(name))
        yield stack
