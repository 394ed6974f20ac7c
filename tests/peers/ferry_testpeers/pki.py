"""A throwaway certificate authority for the test control plane: :class:`ferry_shared.pki.Authority`
with its certificates written to files, plus the service-account signing keys."""

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ferry_shared.pki import Authority

_VALIDITY = datetime.timedelta(days=2)
_SERVER_NAMES = ("localhost", "kubernetes.default.svc", "127.0.0.1")


@dataclass(frozen=True)
class KeyPair:
    """PEM files of one certificate and its key."""

    cert: Path
    key: Path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


class CertificateAuthority:
    """Issues serving and client certificates signed by one fresh CA."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._authority = Authority.create("ferry-test-ca", validity=_VALIDITY)
        self.cert_path = _write(directory / "ca.crt", self._authority.cert_pem)

    def issue(self, name: str, *, common_name: str, organization: str | None = None, server: bool = False) -> KeyPair:
        """A certificate for a server (localhost/127.0.0.1) or a client identity."""
        issued = self._authority.issue(
            common_name,
            server_names=_SERVER_NAMES if server else (),
            client=not server,
            organization=organization,
            validity=_VALIDITY,
        )
        return KeyPair(
            cert=_write(self.directory / f"{name}.crt", issued.cert_pem),
            key=_write(self.directory / f"{name}.key", issued.key_pem),
        )

    def service_account_keys(self) -> KeyPair:
        """An RSA key pair for signing service-account tokens."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return KeyPair(cert=_write(self.directory / "sa.pub", public), key=_write(self.directory / "sa.key", private))
