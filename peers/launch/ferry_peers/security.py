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

import nkeys

from ferry_shared.api_auth.local_token import ensure_token_file, read_token_file
from ferry_shared.bus.permissions import IDENTITIES
from ferry_shared.bus.server_config import key_include_text
from ferry_shared.pki import Authority

API_TOKEN_SERVICES = frozenset({"planner", "inventory"})
"""The services whose HTTP APIs ask for the stack's API token."""


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
    api_token_path: Path | None = None
    """Where the API token is kept when not in ``directory`` (``ferry demo``: the user's own token file)."""

    @classmethod
    def create(cls, directory: Path, *, api_token_file: Path | None = None) -> "LocalSecurity":
        """Make (or reuse, if already made) every secret of a stack in ``directory``."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        security = cls(directory=directory.resolve(), api_token_path=api_token_file)
        security._make_api_token()
        security._make_nats()
        security._make_nbd()
        security._make_secrets_key()
        return security

    def service_env(self, service: str) -> dict[str, str]:
        """The environment variables that give ``service`` its identity and keys."""
        env: dict[str, str] = {}
        env |= self._api_token_service_env(service)
        env |= self.nats_env(service)
        env |= self._nbd_env(service)
        env |= self._secrets_key_env(service)
        return env

    def client_env(self) -> dict[str, str]:
        """The environment variables a client (the CLI, a test) needs to reach the stack."""
        env: dict[str, str] = {}
        env |= self._api_token_client_env()
        return env

    # --- NBD TLS between transfer workers and disk sinks (docs/security.md) ---

    @property
    def nbd_ca_dir(self) -> Path:
        """The NBD CA (``ca-cert.pem``, ``ca-key.pem``): the writer signs each sink's certificate with it."""
        return self.directory / "nbd-ca"

    @property
    def nbd_client_dir(self) -> Path:
        """The transfer's NBD identity: ``ca-cert.pem``, ``client-cert.pem``, ``client-key.pem``."""
        return self.directory / "nbd-transfer"

    def _make_nbd(self) -> None:
        ca_cert, ca_key = self.nbd_ca_dir / "ca-cert.pem", self.nbd_ca_dir / "ca-key.pem"
        if ca_cert.exists() and ca_key.exists():
            authority = Authority.load(ca_cert.read_bytes(), ca_key.read_bytes())
        else:
            authority = Authority.create("Ferry local NBD CA")
            write_private(ca_cert, authority.cert_pem)
            write_private(ca_key, authority.key_pem)
        client = self.nbd_client_dir
        if all((client / name).exists() for name in ("ca-cert.pem", "client-cert.pem", "client-key.pem")):
            return
        issued = authority.issue("ferry transfer", client=True, organization="Ferry")
        write_private(client / "ca-cert.pem", authority.cert_pem)
        write_private(client / "client-cert.pem", issued.cert_pem)
        write_private(client / "client-key.pem", issued.key_pem)

    def _nbd_env(self, service: str) -> dict[str, str]:
        if service == "kubevirt-writer":
            return {"FERRY_WRITER_NBD_CA_DIR": str(self.nbd_ca_dir)}
        if service == "transfer":
            return {"FERRY_TRANSFER_NBD_TLS_DIR": str(self.nbd_client_dir)}
        return {}

    # --- API token (planner and inventory HTTP APIs; docs/security.md) ---

    @property
    def api_token_file(self) -> Path:
        """The stack's API token (mode 0600), which the planner and the inventory accept."""
        return self.api_token_path or self.directory / "api-token"

    def api_headers(self) -> dict[str, str]:
        """The HTTP headers a test client sends to the planner and the inventory."""
        return {"Authorization": f"Bearer {read_token_file(self.api_token_file).reveal()}"}

    def _make_api_token(self) -> None:
        ensure_token_file(self.api_token_file)

    def _api_token_service_env(self, service: str) -> dict[str, str]:
        if service not in API_TOKEN_SERVICES:
            return {}
        return {"FERRY_API_AUTH": "token", "FERRY_API_TOKEN_FILE": str(self.api_token_file)}

    def _api_token_client_env(self) -> dict[str, str]:
        return {"FERRY_API_TOKEN_FILE": str(self.api_token_file)}

    # --- credentials at rest: the keyring of the 'nats' credentials backend (docs/security.md) ---

    @property
    def secrets_key_file(self) -> Path:
        """The keyring that seals provider secrets in the credentials bucket."""
        return self.directory / "secrets-keyring"

    def _make_secrets_key(self) -> None:
        if not self.secrets_key_file.exists():
            key = base64.b64encode(secrets.token_bytes(32)).decode()
            write_private(self.secrets_key_file, f"# Ferry's provider-secret keys; the last one encrypts\nk1:{key}\n".encode())

    def _secrets_key_env(self, service: str) -> dict[str, str]:
        readers = {"planner", "inventory", "kubevirt-writer"}  # the transfer asks the inventory for clone tickets
        return {"FERRY_SECRETS_KEY_FILE": str(self.secrets_key_file)} if service in readers else {}

    # --- NATS: an nkey per identity, the server's TLS, the JetStream store key (docs/security.md) ---

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
