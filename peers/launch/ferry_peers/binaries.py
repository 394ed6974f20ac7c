"""Finds the peer programs built by ``peers/build.sh``."""

import os
import shutil
from pathlib import Path

BIN_ENV = "FERRY_PEERS_BIN"


class PeerNotBuiltError(RuntimeError):
    """A peer program is missing; the message says how to build it."""


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    if explicit := os.environ.get(BIN_ENV):
        dirs.append(Path(explicit))
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in (start, *start.parents):
            if (parent / ".peers" / "bin").is_dir():
                dirs.append(parent / ".peers" / "bin")
                break
    return dirs


def peer_binary(name: str) -> Path:
    """Absolute path of peer program ``name`` (``nats-server``, ``ferry-vcsim``, …)."""
    for directory in _candidate_dirs():
        candidate = directory / name
        if candidate.exists() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    found = shutil.which(name)
    if found:
        return Path(found)
    raise PeerNotBuiltError(
        f"{name} was not found in $FERRY_PEERS_BIN, .peers/bin or PATH; "
        "build the peers with `make peers` (or `peers/build.sh`)"
    )
