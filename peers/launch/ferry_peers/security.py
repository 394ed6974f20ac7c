"""The keys, tokens and certificates of one local Ferry stack (``ferry demo``, the tests and
the benchmarks), made once per directory: files of mode 0600 in a folder of mode 0700.

A :class:`LocalSecurity` is what a local stack's processes are given to authenticate to each
other: :meth:`LocalSecurity.service_env` is the environment of one service process,
:meth:`LocalSecurity.client_env` the environment of the ``ferry`` CLI or a test client.
Each part of Ferry's security perimeter adds its own material here (see ``docs/security.md``).
"""

import os
from dataclasses import dataclass
from pathlib import Path


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` readable by its owner only (never briefly wider)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class LocalSecurity:
    """Where one local stack's secret material lives; see the module docstring."""

    directory: Path

    @classmethod
    def create(cls, directory: Path) -> "LocalSecurity":
        """Make (or reuse, if already made) every secret of a stack in ``directory``."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        return cls(directory=directory.resolve())

    def service_env(self, service: str) -> dict[str, str]:
        """The environment variables that give ``service`` its identity and keys."""
        return {}

    def client_env(self) -> dict[str, str]:
        """The environment variables a client (the CLI, a test) needs to reach the stack."""
        return {}
