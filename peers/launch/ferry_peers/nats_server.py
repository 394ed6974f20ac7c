"""A local nats-server with JetStream on a random loopback port."""

import json
from dataclasses import dataclass
from pathlib import Path

from ferry_peers.binaries import peer_binary
from ferry_peers.processes import ManagedProcess


@dataclass
class NatsServer:
    """A running nats-server and where to reach it."""

    process: ManagedProcess
    url: str
    store_dir: Path

    def stop(self) -> None:
        self.process.stop()


def _read_ports_file(ports_dir: Path) -> str | None:
    for path in ports_dir.glob("*.ports"):
        try:
            ports = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError):
            return None
        urls = ports.get("nats") or []
        return str(urls[0]) if urls else None
    return None


def start_nats_server(work_dir: Path, *, port: int | None = None, timeout: float = 20.0) -> NatsServer:
    """Start nats-server with a file store under ``work_dir``; random port unless given."""
    store = work_dir / "jetstream"
    ports_dir = work_dir / "ports"
    store.mkdir(parents=True, exist_ok=True)
    ports_dir.mkdir(parents=True, exist_ok=True)
    for stale in ports_dir.glob("*.ports"):  # an earlier run's file would be read as ours
        stale.unlink()
    argv = [
        str(peer_binary("nats-server")),
        "-a", "127.0.0.1",
        "-p", str(port if port is not None else -1),
        "-js",
        "-sd", str(store),
        "--ports_file_dir", str(ports_dir),
    ]  # fmt: skip
    process = ManagedProcess("nats-server", argv, work_dir / "nats-server.log")
    url = process.wait_until(lambda: _read_ports_file(ports_dir), timeout=timeout, what="listening")
    return NatsServer(process=process, url=url, store_dir=store)
