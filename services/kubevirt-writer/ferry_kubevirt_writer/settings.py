"""Settings of the kubevirt-writer service beyond the common ones, read from
``FERRY_WRITER_*`` environment variables (and ``FERRY_LOCAL_TARGET_ROOTS``) by the
entry point."""

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from ferry_shared.local_roots import LocalRootsSettings

DEFAULT_SINK_IMAGE = "ghcr.io/ferry-migrate/nbd-sink:0.1.0"


class WriterSettings(LocalRootsSettings):
    """``sink_image``: the image of the disk-sink pods (``nbd-sink`` of ``deploy/images/build.py``);
    ``sink_ready_timeout``: seconds a sink pod may take to serve its disks;
    ``request_timeout``: seconds one Kubernetes API call may take;
    ``nbd_ca_dir``: the NBD CA (``ca-cert.pem``, ``ca-key.pem``) that signs each sink's certificate;
    ``transfer_namespace``: where Ferry's transfer pods run, the only pods a sink's NetworkPolicy
    admits (``FERRY_WRITER_TRANSFER_NAMESPACE``, else Ferry's own ``FERRY_NAMESPACE``);
    ``local_target_roots`` (``FERRY_LOCAL_TARGET_ROOTS``): ``:``-separated absolute
    directories local targets may write into; empty disables local targets."""

    model_config = SettingsConfigDict(env_prefix="FERRY_WRITER_", extra="ignore", populate_by_name=True)

    sink_image: str = DEFAULT_SINK_IMAGE
    sink_ready_timeout: float = Field(default=600.0, gt=0)
    request_timeout: float = Field(default=30.0, gt=0)
    nbd_ca_dir: Path | None = None
    transfer_namespace: str = Field(
        default="ferry", validation_alias=AliasChoices("FERRY_WRITER_TRANSFER_NAMESPACE", "FERRY_NAMESPACE")
    )
