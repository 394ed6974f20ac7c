"""A local nats-server with JetStream on a random loopback port, secured as a deployment's:
an nkey identity per service (and ``admin``), TLS only, and an encrypted store."""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry_peers.binaries import peer_binary
from ferry_peers.processes import ManagedProcess
from ferry_peers.security import LocalSecurity, write_private
from ferry_shared.bus.permissions import ADMIN, IDENTITIES, identity_permissions, inbox_prefix
from ferry_shared.bus.server_config import JetStreamStore, ServerTls, server_config

HOST = "127.0.0.1"


@dataclass
class NatsServer:
    """A running nats-server, where to reach it, and the identities that may."""

    process: ManagedProcess
    url: str
    store_dir: Path
    security: LocalSecurity

    def stop(self) -> None:
        self.process.stop()

    def connect_options(self, identity: str = ADMIN) -> dict[str, Any]:
        """The keyword arguments of :func:`ferry_shared.bus.connection.connect` for ``identity``."""
        return {
            "creds_file": self.security.nats_seed_file(identity),
            "ca_file": self.security.nats_ca_file,
            "inbox_prefix": None if identity == ADMIN else inbox_prefix(identity),
        }

    def settings_options(self, identity: str = ADMIN) -> dict[str, Any]:
        """The NATS fields of a :class:`~ferry_shared.settings.ServiceSettings` for ``identity``."""
        return {
            "nats_url": self.url,
            "nats_creds_file": self.security.nats_seed_file(identity),
            "nats_ca_file": self.security.nats_ca_file,
        }

    def service_env(self, service: str) -> dict[str, str]:
        """The NATS environment of a ``service`` process using this server: its URL and identity."""
        return {"FERRY_NATS_URL": self.url, **self.security.nats_env(service)}


def _read_ports_file(ports_dir: Path) -> str | None:
    for path in ports_dir.glob("*.ports"):
        try:
            ports = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError):
            return None
        urls = ports.get("nats") or []
        return str(urls[0]).replace("nats://", "tls://", 1) if urls else None
    return None


def write_server_config(security: LocalSecurity, store: Path, path: Path, *, port: int) -> Path:
    """Write the server's configuration (mode 0600) for every identity of ``security``."""
    users = {identity: (security.nats_public_key(identity), identity_permissions(identity)) for identity in IDENTITIES}
    text = server_config(
        users,
        host=HOST,
        port=port,
        tls=ServerTls(
            cert_file=security.nats_server_cert_file,
            key_file=security.nats_server_key_file,
            ca_file=security.nats_ca_file,
        ),
        jetstream=JetStreamStore(
            store_dir=store, key_include=Path(os.path.relpath(security.jetstream_key_file, path.parent))
        ),
    )
    return write_private(path, text.encode())


def start_nats_server(
    work_dir: Path, *, security: LocalSecurity | None = None, port: int | None = None, timeout: float = 20.0
) -> NatsServer:
    """Start nats-server with a file store under ``work_dir``; random port unless given. Its key
    material is ``security``'s, else made (or, on a restart, reused) in ``work_dir / "security"``."""
    security = security or LocalSecurity.create(work_dir / "security")
    store = work_dir / "jetstream"
    ports_dir = work_dir / "ports"
    store.mkdir(parents=True, exist_ok=True)
    ports_dir.mkdir(parents=True, exist_ok=True)
    for stale in ports_dir.glob("*.ports"):  # an earlier run's file would be read as ours
        stale.unlink()
    config = write_server_config(security, store, work_dir / "nats-server.conf", port=port if port is not None else -1)
    argv = [str(peer_binary("nats-server")), "-c", str(config), "--ports_file_dir", str(ports_dir)]
    process = ManagedProcess("nats-server", argv, work_dir / "nats-server.log")
    url = process.wait_until(lambda: _read_ports_file(ports_dir), timeout=timeout, what="listening")
    return NatsServer(process=process, url=url, store_dir=store, security=security)
