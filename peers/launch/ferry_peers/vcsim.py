"""A local ferry-vcsim (govmomi's vSphere simulator with Ferry's model and extras)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry_peers.binaries import peer_binary
from ferry_peers.processes import ManagedProcess

DEFAULT_USERNAME = "administrator@vsphere.local"


@dataclass
class Vcsim:
    """A running simulator: its SOAP URL, control API, TLS identity and state folder."""

    process: ManagedProcess
    sdk_url: str
    control_url: str
    thumbprint_sha256: str
    certificate_path: Path
    state_dir: Path
    username: str
    password: str

    @property
    def host(self) -> str:
        return self.sdk_url.split("//", 1)[1].split("/", 1)[0]

    def stop(self) -> None:
        self.process.stop()


def _read_ready(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def start_vcsim(
    work_dir: Path,
    *,
    password: str,
    username: str = DEFAULT_USERNAME,
    model: dict[str, Any] | None = None,
    tls: bool = True,
    bandwidth_per_connection: int = 0,
    timeout: float = 120.0,
) -> Vcsim:
    """Start the simulator with ``model`` (its default model when None)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    state_dir = work_dir / "state"
    ready_file = work_dir / "ready.json"
    ready_file.unlink(missing_ok=True)  # a stale file from an earlier run would be read as ours
    argv = [
        str(peer_binary("ferry-vcsim")),
        "--state-dir", str(state_dir),
        "--ready-file", str(ready_file),
        f"--tls={'true' if tls else 'false'}",
        "--username", username,
        "--password", password,
        "--bandwidth-per-conn", str(bandwidth_per_connection),
    ]  # fmt: skip
    if model is not None:
        model_path = work_dir / "model.json"
        model_path.write_text(json.dumps(model))
        argv += ["--model", str(model_path)]
    process = ManagedProcess("ferry-vcsim", argv, work_dir / "vcsim.log")
    ready = process.wait_until(lambda: _read_ready(ready_file), timeout=timeout, what="ready")
    return Vcsim(
        process=process,
        sdk_url=ready["sdk_url"],
        control_url=ready["control_url"],
        thumbprint_sha256=ready["thumbprint_sha256"],
        certificate_path=state_dir / "server.pem",
        state_dir=state_dir,
        username=username,
        password=password,
    )
