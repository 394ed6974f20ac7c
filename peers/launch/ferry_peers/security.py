"""The keys, tokens and certificates of one local Ferry stack (``ferry demo``, the tests and
the benchmarks), made once per directory: files of mode 0600 in a folder of mode 0700.

A :class:`LocalSecurity` is what a local stack's processes are given to authenticate to each
other: :meth:`LocalSecurity.service_env` is the environment of one service process,
:meth:`LocalSecurity.client_env` the environment of the ``ferry`` CLI or a test client.
Each part of Ferry's security perimeter adds its own material here (see ``docs/security.md``).
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import nkeys

from ferry_shared.bus.permissions import IDENTITIES
from ferry_shared.bus.server_config import key_include_text
from ferry_shared.pki import Authority


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
        security._make_nats()
        return security

    def service_env(self, service: str) -> dict[str, str]:
        """The environment variables that give ``service`` its identity and keys."""
        env: dict[str, str] = {}
        env |= self.nats_env(service)
        return env

    def client_env(self) -> dict[str, str]:
        """The environment variables a client (the CLI, a test) needs to reach the stack."""
        return {}

    # --- NATS: an nkey per identity, the server's TLS, the JetStream store key -------------

    @property
    def nats_dir(self) -> Path:
        return self.directory / "nats"

    def nats_seed_file(self, identity: str) -> Path:
        """The nkey seed of ``identity`` (a service's name, or ``admin``)."""
        return self.nats_dir / f"{identity}.nk"

    def nats_public_key(self, identity: str) -> str:
        seed = bytearray(self.nats_seed_file(identity).read_bytes().strip())
        return str(nkeys.from_seed(seed).public_key.decode())

    @property
    def nats_ca_file(self) -> Path:
        return self.nats_dir / "ca.pem"

    @property
    def nats_server_cert_file(self) -> Path:
        return self.nats_dir / "server-cert.pem"

    @property
    def nats_server_key_file(self) -> Path:
        return self.nats_dir / "server-key.pem"

    @property
    def jetstream_key_file(self) -> Path:
        """A nats-server config fragment (``key: "…"``) included in the ``jetstream`` block."""
        return self.nats_dir / "jetstream-key.conf"

    def nats_env(self, identity: str) -> dict[str, str]:
        """``FERRY_NATS_CREDS_FILE`` and ``FERRY_NATS_CA_FILE`` of ``identity``."""
        return {
            "FERRY_NATS_CREDS_FILE": str(self.nats_seed_file(identity)),
            "FERRY_NATS_CA_FILE": str(self.nats_ca_file),
        }

    def _make_nats(self) -> None:
        for identity in IDENTITIES:
            if not self.nats_seed_file(identity).exists():
                seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
                write_private(self.nats_seed_file(identity), bytes(seed) + b"\n")
        if not self.nats_ca_file.exists() or not self.nats_server_cert_file.exists():
            authority = Authority.create("Ferry local NATS CA")
            server = authority.issue("nats-server", server_names=("127.0.0.1", "localhost"))
            write_private(self.nats_dir / "ca-key.pem", authority.key_pem)
            write_private(self.nats_server_key_file, server.key_pem)
            write_private(self.nats_server_cert_file, server.cert_pem)
            write_private(self.nats_ca_file, authority.cert_pem)
        if not self.jetstream_key_file.exists():
            write_private(self.jetstream_key_file, key_include_text(secrets.token_urlsafe(32)).encode())

