"""What every planner use case runs with: its ports, its settings, and the guards that
serialize changes to one migration.

The bootstrap builds one :class:`PlannerPorts`; the handlers are functions that take
it. The guards are the only state the use cases share: per-migration locks (changes to
one migration are applied one at a time), one scheduling lock (granting slots looks at
every running migration; it takes migration locks, and is never taken while holding
one), and one creation lock (two starts of one plan cannot both see it idle).
"""

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ferry_planner.domain.ports import (
    ChangeFeed,
    Clock,
    Credentials,
    InventoryView,
    Leadership,
    MigrationRepository,
    Publisher,
    Resources,
    Revalidation,
)
from ferry_shared.plans import PlanStatus

DEFAULT_MAX_VMS_PER_HOST = 10
DEFAULT_STEP_DEADLINE = 900.0


@dataclass
class Guards:
    migration: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    scheduling: asyncio.Lock = field(default_factory=asyncio.Lock)
    creation: asyncio.Lock = field(default_factory=asyncio.Lock)
    provider: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    """Per provider: one change of its settings and secret at a time in this replica."""


@dataclass
class Announced:
    """The last validation result announced per plan, and the id of its announcement
    (each id is derived from the one before, so a repeat of an earlier result is a new message)."""

    statuses: dict[str, PlanStatus] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class Validated:
    """Each plan's last validation result, with what it was computed from (a
    :class:`ferry_planner.handlers.plan_status.Kept`)."""

    results: dict[str, object] = field(default_factory=dict)


class SoleReplica:
    """The ``Leadership`` of a planner that runs alone (unit tests): always the leader."""

    def is_leader(self) -> bool:
        return True


@dataclass(frozen=True)
class PlannerPorts:
    resources: Resources
    credentials: Credentials
    inventory: InventoryView
    migrations: MigrationRepository
    publisher: Publisher
    changes: ChangeFeed
    revalidation: Revalidation
    clock: Clock
    max_vms_per_host: int = DEFAULT_MAX_VMS_PER_HOST
    step_deadline: float = DEFAULT_STEP_DEADLINE  # seconds a VM may hear nothing about the step it waits for
    leadership: Leadership = field(default_factory=SoleReplica)
    guards: Guards = field(default_factory=Guards)
    announced: Announced = field(default_factory=Announced)
    validated: Validated = field(default_factory=Validated)
    local_target_roots: tuple[Path, ...] = ()  # where local targets may be (FERRY_LOCAL_TARGET_ROOTS); none: refused

    def __post_init__(self) -> None:
        if self.max_vms_per_host < 1:
            raise ValueError(f"max_vms_per_host must be at least 1, got {self.max_vms_per_host}")
        if self.step_deadline <= 0:
            raise ValueError(f"step_deadline must be positive, got {self.step_deadline}")
