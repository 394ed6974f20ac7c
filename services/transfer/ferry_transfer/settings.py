"""Tuning of the transfer workers, read from ``FERRY_TRANSFER_*`` environment variables (by
:mod:`ferry_transfer.entrypoints.main`, the only reader).

A worker handles ``ranges_in_flight`` messages (ranges, or disks being planned) at once; it
is its command consumer's ``max_in_flight``. Ranges of one sink that end together are made
durable by one flush (``sync_ranges``, ``sync_wait``). Memory per worker is about the process itself
(about 70 MiB) plus ``ranges_in_flight`` * 2 * ``chunk_size`` (a chunk read and its
read-back, in buffers reused from range to range): 8 * 2 * 4 MiB, 64 MiB, with the defaults,
whatever the disk size. Caps are per worker: with N workers, a source host sees up to N * ``connections_per_host``
connections and a datastore N * ``connections_per_datastore``.
"""

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry_transfer.domain.ranges import DEFAULT_CHUNK_SIZE, DEFAULT_RANGE_SIZE, ZERO_BLOCK, MiB


class TransferSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRY_TRANSFER_", extra="ignore")

    range_size: int = Field(default=DEFAULT_RANGE_SIZE, ge=ZERO_BLOCK, le=1024 * MiB)
    """Bytes per range, the unit of work on the queue; a multiple of 64 KiB."""
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, ge=ZERO_BLOCK, le=64 * MiB)
    """Bytes read, written and checked at a time within a range (at most the range); a multiple of 64 KiB."""
    ranges_in_flight: int = Field(default=8, ge=1, le=256)
    """Ranges (and disk plans) one worker handles at once: its command consumer's max_in_flight."""
    sync_ranges: int = Field(default=8, ge=1, le=256)
    """Ranges of one sink made durable by one flush, at most (a flush also starts once every range
    that has the sink open waits for it, or after ``sync_wait``)."""
    sync_wait: float = Field(default=0.5, ge=0, le=60)
    """Seconds a copied range waits, at most, for others of its sink to share one flush."""
    connections_per_host: int = Field(default=8, ge=1, le=256)
    """Reads (HTTP connections) at once from one worker to one source host."""
    connections_per_datastore: int = Field(default=8, ge=1, le=256)
    """Reads at once from one worker to one datastore."""
    progress_interval: float = Field(default=0.5, gt=0)
    """Seconds between two progress events of one disk, at least (across all workers)."""
    nbd_requests_in_flight: int = Field(default=16, ge=1)
    """NBD requests in flight on one worker's connection to one export."""
    nbd_tls_dir: Path | None = None
    """Directory with ``ca-cert.pem`` (Ferry's NBD CA), ``client-cert.pem`` and ``client-key.pem``: the
    worker's TLS identity towards disk sinks (Kubernetes sink pods require it)."""
    read_retries: int = Field(default=3, ge=0)
    """Retries of one read after a failure worth retrying, before the range is retried."""
    read_retry_delay: float = Field(default=0.5, ge=0)
    """Seconds before the first retry of a read; doubled for each further one."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to reach vCenter or an NBD sink."""
    call_timeout: float = Field(default=60.0, gt=0)
    """Seconds for one vCenter SOAP call (the login, a CBT query)."""
    cancelled_vms_kept: int = Field(default=10_000, ge=1)
    cancelled_vms_seconds: float = Field(default=3 * 24 * 3600.0, gt=0)
    """How many cancelled VMs to remember, and for how long (a worker started later replays this far back
    in the events stream, which keeps 7 days)."""
    ack_wait: float = Field(default=5.0, gt=0)
    """Seconds after which a range (or disk plan) whose worker stopped renewing its lease goes to another
    worker: the transfer's command consumer's ack wait (a live worker renews it every fifth of it)."""

    @model_validator(mode="after")
    def _blocks(self) -> "TransferSettings":
        for name in ("range_size", "chunk_size"):
            value = getattr(self, name)
            if value % ZERO_BLOCK:
                raise ValueError(f"{name} must be a multiple of {ZERO_BLOCK} bytes (64 KiB), got {value}")
        return self
