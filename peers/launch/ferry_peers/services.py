"""One Ferry service as a local process (``python -m <package>``), ready to take requests.

Used by ``ferry demo``'s stack, the end-to-end tests and the benchmarks.
"""

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from ferry_peers.nats_server import NatsServer
from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_peers.security import LocalSecurity

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


def ready(url: str) -> bool | None:
    """True once ``url``'s ``/readyz`` answers 200 (None: not yet)."""
    try:
        return True if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200 else None
    except httpx.HTTPError:
        return None


def start_service(
    name: str,
    nats: NatsServer,
    work_dir: Path,
    *,
    port: int | None = None,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    replica: str = "",
    security: LocalSecurity | None = None,
) -> ServiceProcess:
    """Start one service as ``python -m <package>`` and wait until it is ready; ``env`` adds
    settings, ``replica`` names a second process of the same service (and its log).
    ``security`` is the stack's key material (by default the NATS server's, ``nats.security``);
    the service reaches ``nats`` as its own identity there, whatever ``security`` holds.
    Local targets may write only inside ``work_dir`` unless ``env`` says otherwise."""
    port = port or free_port()
    settings = {
        **(security or nats.security).service_env(name),
        **nats.service_env(name),
        "FERRY_HTTP_PORT": str(port),
        "FERRY_HTTP_HOST": "127.0.0.1",
        "FERRY_LOCAL_TARGET_ROOTS": str(work_dir.resolve()),
        **(env or {}),
    }
    argv = [sys.executable, "-m", SERVICE_MODULES[name]]
    label = f"{name}-{replica}" if replica else name
    process = ManagedProcess(label, argv, work_dir / "logs" / f"{label}.log", env=settings)
    url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: ready(url), timeout=timeout, what="ready")
    return ServiceProcess(name=name, process=process, http_url=url)
