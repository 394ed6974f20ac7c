"""Issues each disk sink its TLS server certificate from Ferry's NBD CA.

The CA (``ca-cert.pem`` and ``ca-key.pem`` in ``FERRY_WRITER_NBD_CA_DIR``, a mounted Secret
in a cluster) is loaded once at start by the bootstrap; the Kubernetes writer asks for one
certificate per VM, for the name :func:`~ferry_kubevirt_writer.domain.sink_tls.sink_server_name`
gives, and puts it with its key in the VM's sink Secret. Nothing here is logged.
"""

from dataclasses import dataclass
from pathlib import Path

from ferry_shared.pki import Authority

CA_CERT, CA_KEY = "ca-cert.pem", "ca-key.pem"


@dataclass(frozen=True)
class SinkCredentials:
    """What a sink's Secret holds (PEM)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


class SinkCertificates:
    """The NBD CA, issuing server certificates for disk sinks."""

    def __init__(self, authority: Authority) -> None:
        self._authority = authority

    @classmethod
    def load(cls, directory: Path) -> "SinkCertificates":
        """The CA from ``directory``; a missing file is named in the error."""
        missing = [name for name in (CA_CERT, CA_KEY) if not (directory / name).is_file()]
        if missing:
            raise FileNotFoundError(f"the NBD CA directory {directory} lacks {', '.join(missing)}")
        return cls(Authority.load((directory / CA_CERT).read_bytes(), (directory / CA_KEY).read_bytes()))

    def issue(self, server_name: str) -> SinkCredentials:
        issued = self._authority.issue("ferry disk sink", server_names=[server_name], organization="Ferry")
        return SinkCredentials(self._authority.cert_pem, issued.cert_pem, issued.key_pem)
