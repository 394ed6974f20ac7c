"""The planner's own settings (``FERRY_PLANNER_*``); the settings every service shares are
:class:`ferry_shared.settings.ServiceSettings`."""

import os
import socket
from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ferry_planner.handlers.context import DEFAULT_MAX_VMS_PER_HOST, DEFAULT_STEP_DEADLINE
from ferry_shared.local_roots import LocalRootsSettings


class PlannerSettings(LocalRootsSettings):
    model_config = SettingsConfigDict(env_prefix="FERRY_PLANNER_", extra="ignore", populate_by_name=True)

    max_vms_per_host: Annotated[int, Field(ge=1, description="VMs migrated at once per source ESXi host")] = (
        DEFAULT_MAX_VMS_PER_HOST
    )
    progress_save_interval: Annotated[
        float, Field(gt=0, description="seconds between stores of disk progress (which is announced at once)")
    ] = 0.5
    step_deadline: Annotated[
        float,
        Field(
            gt=0,
            description="seconds a VM may hear nothing (no answer, no progress) about the step it waits for before "
            "it fails, naming the service it waited for; above the inventory's guest shutdown timeout (300 s)",
        ),
    ] = DEFAULT_STEP_DEADLINE
    replica_name: Annotated[
        str, Field(min_length=1, max_length=253, description="this replica's name in the lease")
    ] = f"{socket.gethostname()}-{os.getpid()}"
    lease_ttl: Annotated[
        float, Field(gt=0, description="seconds without a renewal after which a standby replica takes over")
    ] = 6.0
    lease_renew_every: Annotated[float, Field(gt=0, description="seconds between the active replica's renewals")] = 2.0
