"""One Ferry service as a local process (``python -m <package>``), ready to take requests.

Used by ``ferry demo``'s stack, the end-to-end tests and the benchmarks.
"""

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

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


def stack_security(work_dir: Path) -> LocalSecurity:
    """The key material of the stack whose processes work in ``work_dir`` (made once)."""
    return LocalSecurity.create(work_dir / "security")


def _ready(url: str) -> bool | None:
    try:
        return True if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200 else None
    except httpx.HTTPError:
        return None


def start_service(
    name: str,
    nats_url: str,
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
    ``security`` is the stack's key material (by default :func:`stack_security` of ``work_dir``).
    Local targets may write only inside ``work_dir`` unless ``env`` says otherwise."""
    port = port or free_port()
    keys = (security or stack_security(work_dir)).service_env(name)
    settings = {
        "FERRY_NATS_URL": nats_url,
        "FERRY_HTTP_PORT": str(port),
        "FERRY_HTTP_HOST": "127.0.0.1",
        "FERRY_LOCAL_TARGET_ROOTS": str(work_dir.resolve()),
        **keys,
        **(env or {}),
    }
    argv = [sys.executable, "-m", SERVICE_MODULES[name]]
    label = f"{name}-{replica}" if replica else name
    process = ManagedProcess(label, argv, work_dir / "logs" / f"{label}.log", env=settings)
    url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: _ready(url), timeout=timeout, what="ready")
    return ServiceProcess(name=name, process=process, http_url=url)
