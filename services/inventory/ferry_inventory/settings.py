"""Tuning of the inventory service beyond the common settings, read from
``FERRY_INVENTORY_*`` environment variables by its entry point and handed to its
bootstrap, which gives each adapter its part.

Watchers retry a failed connection after ``retry_initial`` seconds, doubling the wait
after each failure up to ``retry_max`` (a vCenter refusing the password waits at least
``login_retry_min``, so single sign-on does not lock the user out). vSphere calls are
bounded by ``connect_timeout`` (TCP and TLS of the probe) and ``call_timeout`` (any one
SOAP call); the watchers' long-polls by ``watch_max_wait_seconds`` and the power
operations' by ``power_max_wait_seconds``, which also bound how long a stop may wait.
"""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class InventorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRY_INVENTORY_", extra="ignore")

    retry_initial: float = Field(default=1.0, gt=0)
    """Seconds before a watcher's first retry after a failure; doubled for each further one."""
    retry_max: float = Field(default=60.0, gt=0)
    """The longest wait between two retries of a watcher."""
    login_retry_min: float = Field(default=180.0, ge=0)
    """Seconds a vSphere watcher waits at least after its password was refused."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds for the TCP connect and TLS handshake of a vCenter's probe."""
    call_timeout: float = Field(default=120.0, gt=0)
    """Seconds any one SOAP call to a vCenter may take."""
    close_timeout: float = Field(default=10.0, gt=0)
    """Seconds a vSphere logout may take before it is left behind."""
    watch_batch_size: int = Field(default=500, ge=1)
    """Objects per page of a vSphere watcher's full load (RetrievePropertiesEx)."""
    watch_max_wait_seconds: int = Field(default=2, ge=1)
    """Seconds of one long-poll of a vSphere watcher's change feed (WaitForUpdatesEx)."""
    watcher_stop_grace: float = Field(default=15.0, gt=0)
    """Seconds a stopped watcher may take to end before it is cancelled."""
    power_task_timeout: float = Field(default=600.0, gt=0)
    """Seconds a source VM's power task may run before it is reported (and the command retried)."""
    power_max_wait_seconds: int = Field(default=10, ge=1)
    """Seconds of one long-poll while waiting on a source VM's power state."""
    power_threads: int = Field(default=32, ge=1)
    """Blocking vSphere calls for power operations at once (each command holds one while it waits)."""
