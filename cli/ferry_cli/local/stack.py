"""A whole Ferry stack on one machine: NATS, the simulated vCenter and the four services.

Used by ``ferry demo``; the processes are started by the test peers' launchers
(:mod:`ferry_peers`), each logging to a file in the stack's work folder, and
stopped with SIGTERM (then SIGKILL) on the way out.
"""

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry_peers.nats_server import NatsServer, start_nats_server
from ferry_peers.processes import stop_all
from ferry_peers.security import LocalSecurity
from ferry_peers.services import SERVICE_MODULES, ServiceProcess, start_service
from ferry_peers.vcsim import Vcsim, start_vcsim
from ferry_shared.api_auth.local_token import read_token_file
from ferry_shared.credentials import Secret


@dataclass
class LocalStack:
    """Everything ``start_local_stack`` started."""

    work_dir: Path
    nats: NatsServer
    vcsim: Vcsim
    security: LocalSecurity
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def target_dir(self) -> Path:
        """The folder for a local target provider (created by :func:`local_stack`)."""
        return self.work_dir / "target"

    def api_token(self) -> Secret:
        """The token the stack's planner and inventory accept."""
        return read_token_file(self.security.api_token_file)

    def stop(self) -> None:
        stop_all(service.process for service in self.services.values())
        self.vcsim.stop()
        self.nats.stop()


DEMO_PORTS = {"planner": 8081, "inventory": 8082, "transfer": 8083, "kubevirt-writer": 8084}
"""Fixed ports for ``ferry demo``, so the CLI's defaults reach it."""


@contextlib.contextmanager
def local_stack(
    work_dir: Path,
    *,
    ports: dict[str, int] | None = None,
    model: dict[str, Any] | None = None,
    api_token_file: Path | None = None,
) -> Iterator[LocalStack]:
    """Start NATS, the simulator (with ``model``, or its default one) and every service
    (on ``ports`` or free ones); stop them all on exit. ``work_dir`` is made absolute, as
    the services get paths in it; ``stack.target_dir`` is created for a local target.
    The API token is ``api_token_file`` (made if missing), else one in the work folder."""
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    security = LocalSecurity.create(work_dir / "security", api_token_file=api_token_file)
    with contextlib.ExitStack() as cleanup:
        nats = start_nats_server(work_dir / "nats", security=security)
        cleanup.callback(nats.stop)
        vcsim = start_vcsim(work_dir / "vcsim", password=secrets.token_urlsafe(16), model=model)
        cleanup.callback(vcsim.stop)
        stack = LocalStack(work_dir=work_dir, nats=nats, vcsim=vcsim, security=security)
        stack.target_dir.mkdir(exist_ok=True)
        cleanup.callback(lambda: stop_all(service.process for service in stack.services.values()))
        for name in SERVICE_MODULES:
            stack.services[name] = start_service(name, nats, work_dir, port=(ports or {}).get(name), security=security)
        yield stack
