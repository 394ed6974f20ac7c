"""The planner's unit of work: a change to a migration together with the messages it sends.

Transitions of the state machine give :class:`Step`\\ s; :func:`commit_of` folds them
into one :class:`Commit`: the migration after them, and for each changed VM an
:class:`Outbox` holding that step's messages. The repository stores each VM *with*
its outbox in one write, and only then are the messages published; a crash between
the two leaves the outbox stored, and it is published again on start (the ids are
deterministic, so the bus deduplicates a repeat). Pure, no I/O.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Union, get_args

import msgspec

from ferry_planner.domain.migration_machine import Step
from ferry_planner.domain.migrations import Migration, MigrationPhase, VmPhase
from ferry_shared.messages import Message
from ferry_shared.migrations import (
    CleanupVm,
    CopyDisk,
    CreateVm,
    MigrationFinished,
    PowerOffSourceVm,
    PrepareVolumes,
    RestoreSourcePowerState,
    VmCancelRequested,
    VmPhaseChanged,
    step_id,
)

OutboxMessage = Union[  # noqa: UP007 (msgspec needs a Union of the concrete types)
    PowerOffSourceVm,
    RestoreSourcePowerState,
    PrepareVolumes,
    CopyDisk,
    CreateVm,
    CleanupVm,
    VmCancelRequested,
    VmPhaseChanged,
    MigrationFinished,
]
"""Every message the planner sends for a migration (what an outbox may hold)."""

OUTBOX_TYPES: tuple[type[Message], ...] = get_args(OutboxMessage)

MIGRATION_ITSELF = ""
"""The ``vm_id`` of an outbox that belongs to the migration, not to one VM."""


class Outbox(msgspec.Struct, frozen=True, kw_only=True):
    """Messages one change of one VM (or of the migration itself) must send, in order."""

    migration: str
    vm_id: str
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Commit:
    """One change to one migration: the state to store and the outboxes to send."""

    before: Migration
    after: Migration
    outboxes: tuple[Outbox, ...]
    progress_only: bool = False
    entered: dict[str, tuple[VmPhase, ...]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True when this change ended the migration."""
        return self.before.phase is MigrationPhase.RUNNING and self.after.phase is not MigrationPhase.RUNNING

    @property
    def changed_vms(self) -> tuple[str, ...]:
        return tuple(box.vm_id for box in self.outboxes if box.vm_id != MIGRATION_ITSELF)


def finished_event(migration: Migration) -> MigrationFinished:
    counts = migration.counts()
    return MigrationFinished(
        message_id=step_id(migration.name, "-", "migration_finished"),
        migration=migration.name,
        plan=migration.plan,
        succeeded=counts.succeeded,
        failed=counts.failed,
        canceled=counts.canceled,
    )


def finish_if_done(migration: Migration, now: datetime) -> tuple[Migration, tuple[Outbox, ...]]:
    """``migration`` with its end time, and the outbox announcing it, when all its VMs
    have finished and it has no end time yet."""
    if migration.phase is MigrationPhase.RUNNING or migration.completed_at is not None:
        return migration, ()
    ended = msgspec.structs.replace(migration, completed_at=now)
    return ended, (Outbox(migration=ended.name, vm_id=MIGRATION_ITSELF, messages=(finished_event(ended),)),)


def commit_of(before: Migration, steps: Sequence[Step], now: datetime) -> Commit:
    """Fold ``steps`` (each about a different VM of ``before``) into one commit."""
    heard = [msgspec.structs.replace(step.vm, heard_at=now) for step in steps]
    after = before
    for vm in heard:
        after = after.with_vm(vm)
    after, ending = finish_if_done(after, now)
    boxes = tuple(Outbox(migration=before.name, vm_id=step.vm.vm_id, messages=step.messages) for step in steps)
    return Commit(
        before=before,
        after=after,
        outboxes=(*boxes, *ending),
        progress_only=all(step.progress_only for step in steps) and not ending,
        entered={step.vm.vm_id: step.entered for step in steps if step.entered},
    )
