"""Tuning of the transfer workers, read from ``FERRY_TRANSFER_*`` environment variables.

Memory per worker is at most about ``FERRY_MAX_IN_FLIGHT`` (disks at once, a shared setting)
times ``requests_in_flight`` times ``range_size``: 16 * 4 * 16 MiB = 1 GiB with the defaults.
"""

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
ALIGNMENT = 4096


class TransferSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRY_TRANSFER_", extra="ignore")

    requests_in_flight: int = Field(default=4, ge=1, le=64)
    """Ranges of one disk read and written at once (and HTTP connections per disk)."""
    range_size: int = Field(default=16 * MiB, ge=ALIGNMENT, le=256 * MiB)
    """Bytes per ranged read; a multiple of 4096."""
    progress_interval: float = Field(default=0.5, gt=0)
    """Seconds between two progress events of one disk, at least."""
    nbd_requests_in_flight: int = Field(default=16, ge=1)
    read_retries: int = Field(default=3, ge=0)
    """Retries of one range read after a failure worth retrying, before the command is retried."""
    read_retry_delay: float = Field(default=0.5, ge=0)
    """Seconds before the first retry of a read; doubled for each further one."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to reach vCenter or an NBD sink."""
    call_timeout: float = Field(default=60.0, gt=0)
    """Seconds for one vCenter SOAP call (the login)."""
    cancelled_vms_kept: int = Field(default=10_000, ge=1)
    cancelled_vms_seconds: float = Field(default=3600.0, gt=0)
    """How many cancelled VMs to remember, and for how long, so their late CopyDisk commands are skipped."""

    @field_validator("range_size")
    @classmethod
    def _aligned(cls, value: int) -> int:
        if value % ALIGNMENT:
            raise ValueError(f"range_size must be a multiple of {ALIGNMENT} bytes, got {value}")
        return value
