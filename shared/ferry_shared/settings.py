"""Settings common to every service, read from ``FERRY_*`` environment variables."""

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every Ferry service needs to start.

    ``FERRY_NATS_URL`` may list several servers separated by commas (``tls://`` with a CA).
    ``FERRY_NATS_CREDS_FILE`` is the service's NATS identity (an nkey seed file), or
    ``FERRY_NATS_USER`` with ``FERRY_NATS_PASSWORD_FILE`` (a file holding the password, read at
    connect: the chart's own NATS). ``FERRY_NATS_CA_FILE`` is the CA of the servers' TLS certificates.
    """

    model_config = SettingsConfigDict(env_prefix="FERRY_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    nats_creds_file: Path | None = None
    nats_user: str | None = None
    nats_password_file: Path | None = None
    nats_ca_file: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 0
    log_level: str = "info"
    jetstream_replicas: int = 1
    max_in_flight: int = 16
    ack_wait: float = 30.0
    """Seconds before JetStream redelivers a command whose handler neither acked nor renewed its lease."""

    # ── credentials at rest (docs/security.md) ────────────────────────
    credentials_backend: Literal["nats", "kubernetes"] = "nats"
    """Where provider secrets rest: AES-GCM sealed in the credentials bucket, or Kubernetes Secrets."""
    secrets_key_file: Path | None = None
    """The keyring of the ``nats`` backend (lines ``<key-id>:<base64 key>``, the last encrypts)."""
    namespace: str = ""
    """Ferry's own namespace (the ``kubernetes`` backend's Secrets); the pod's namespace when empty."""
    kubeconfig: Path | None = None
    """The service's own Kubernetes access; the pod's service account when unset."""
