"""The keys, tokens and certificates of one local Ferry stack (``ferry demo``, the tests and
the benchmarks), made once per directory: files of mode 0600 in a folder of mode 0700.

A :class:`LocalSecurity` is what a local stack's processes are given to authenticate to each
other: :meth:`LocalSecurity.service_env` is the environment of one service process,
:meth:`LocalSecurity.client_env` the environment of the ``ferry`` CLI or a test client.
Each part of Ferry's security perimeter adds its own material here (see ``docs/security.md``).
"""

import base64
import os
import secrets
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
        security = cls(directory=directory.resolve())
        security._make_secrets_key()
        return security

    def service_env(self, service: str) -> dict[str, str]:
        """The environment variables that give ``service`` its identity and keys."""
        env: dict[str, str] = {}
        env |= self._secrets_key_env(service)
        return env

    def client_env(self) -> dict[str, str]:
        """The environment variables a client (the CLI, a test) needs to reach the stack."""
        return {}

    # ── credentials at rest: the keyring of the 'nats' credentials backend ───────────
    @property
    def secrets_key_file(self) -> Path:
        """The keyring that seals provider secrets in the credentials bucket."""
        return self.directory / "secrets-keyring"

    def _make_secrets_key(self) -> None:
        if not self.secrets_key_file.exists():
            key = base64.b64encode(secrets.token_bytes(32)).decode()
            write_private(self.secrets_key_file, f"# Ferry's provider-secret keys; the last one encrypts\nk1:{key}\n".encode())

    def _secrets_key_env(self, service: str) -> dict[str, str]:
        readers = {"planner", "inventory", "kubevirt-writer"}
        readers.add("transfer")  # until the transfer uses clone tickets
        return {"FERRY_SECRETS_KEY_FILE": str(self.secrets_key_file)} if service in readers else {}
