"""Use cases of migrations: start a Ready plan, follow each VM's events, cancel VMs.

Every change goes the same way (:meth:`Migrations._commit`): the machine's messages are
published first (deterministic ids, so a repeat after a crash deduplicates), then the
migration is stored (so a stored state always had its commands sent, and a redelivered
event finds nothing left to do), then it is announced on the server-sent-events stream.
Changes to one migration are serialized by its lock; slots are granted under one
scheduling lock, which takes migration locks but is never taken while holding one.
Disk progress alone is stored at most every :data:`PROGRESS_SAVE_INTERVAL` seconds
per migration, and announced at once.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.adapters.inventory_mirror import InventoryMirror
from ferry_planner.adapters.migration_store import MigrationStore
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.domain import migration_machine as machine
from ferry_planner.domain.blueprint import BlueprintError
from ferry_planner.domain.conditions import Category
from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.migration_machine import MachineContext, Step
from ferry_planner.domain.migration_views import MigrationView, migration_view, vm_view
from ferry_planner.domain.migrations import Migration, MigrationPhase, VmMigration, VmPhase
from ferry_planner.domain.new_migration import MigrationInputs, completed_before, new_migration, next_name
from ferry_planner.domain.plans import Plan, PlanStatus
from ferry_planner.domain.providers import ProviderRecord
from ferry_planner.domain.scheduling import schedule
from ferry_planner.handlers.errors import AlreadyExistsError, ConflictError, InvalidError, NotFoundError
from ferry_planner.handlers.planning import Planner
from ferry_planner.handlers.vm_traces import new_vm_trace, within_vm_trace
from ferry_shared.bus.consumer import Handler, HandlerTable
from ferry_shared.bus.delivery import Delivery
from ferry_shared.bus.publisher import Publisher
from ferry_shared.dns1123 import is_dns1123_label
from ferry_shared.errors import TemporaryError
from ferry_shared.messages import Message, MessageFailed, utc_now
from ferry_shared.migrations import (
    DiskCopied,
    DiskCopyProgress,
    MigrationFinished,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourceVmPoweredOff,
    StepEvent,
    VmCleanedUp,
    VmCreated,
    VolumesPrepared,
    step_id,
)

log = logging.getLogger(__name__)

PROGRESS_SAVE_INTERVAL = 0.5
DEFAULT_MAX_VMS_PER_HOST = 10

Transition = Callable[[VmMigration, MachineContext, datetime], Step]


def _context(migration: Migration) -> MachineContext:
    return MachineContext(
        migration=migration.name, plan=migration.plan, source=migration.source, target=migration.target
    )


def _not_ready_reasons(status: PlanStatus) -> str:
    reasons = [c.message for c in status.conditions if c.category is Category.CRITICAL]
    for vm in status.vms:
        reasons += [f"{vm.name or vm.ref}: {c.assessment}" for c in vm.concerns if c.category is Category.CRITICAL]
    return "; ".join(reasons) or "it has not been validated yet"


class Migrations:
    """Starts, follows and cancels migrations."""

    def __init__(
        self,
        store: MigrationStore,
        repository: PlannerRepository,
        mirror: InventoryMirror,
        planner: Planner,
        publisher: Publisher,
        broadcaster: Broadcaster,
        *,
        max_vms_per_host: int = DEFAULT_MAX_VMS_PER_HOST,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if max_vms_per_host < 1:
            raise ValueError(f"max_vms_per_host must be at least 1, got {max_vms_per_host}")
        self._store = store
        self._repo = repository
        self._mirror = mirror
        self._planner = planner
        self._publisher = publisher
        self._broadcaster = broadcaster
        self._budget = max_vms_per_host
        self._clock = clock
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._schedule_lock = asyncio.Lock()
        self._create_lock = asyncio.Lock()
        self._flushes: dict[str, asyncio.Task[None]] = {}
        planner.use_migration_history(self.migrated_vms)

    def event_handlers(self) -> HandlerTable:
        """The events this use case consumes, each to its handler."""
        step_events: list[type[StepEvent]] = [
            SourcePowerStateRecorded,
            SourcePowerOffRequested,
            SourceVmPoweredOff,
            VolumesPrepared,
            DiskCopyProgress,
            DiskCopied,
            VmCreated,
            VmCleanedUp,
        ]
        table: dict[type[Message], Handler] = {event: self._on_step_event for event in step_events}
        table[MessageFailed] = self._on_message_failed
        return table

    async def run(self, stop: asyncio.Event) -> None:
        """Background job: grant the slots free after a restart, then, on stop, store
        whatever progress is still only in memory."""
        await self._schedule()
        await stop.wait()
        await self.flush_all()

    # --- queries ---------------------------------------------------------------------
    def migration(self, name: str) -> MigrationView:
        return migration_view(self._require(name))

    def migrations(self, plan: str | None = None) -> list[MigrationView]:
        found = [m for m in self._store.all() if plan is None or m.plan == plan]
        found.sort(key=lambda m: (m.created_at, m.name), reverse=True)
        return [migration_view(m) for m in found]

    def migrated_vms(self, plan: str) -> dict[str, str]:
        """VM id → the migration of ``plan`` that completed it."""
        return completed_before([m for m in self._store.all() if m.plan == plan])

    def _require(self, name: str) -> Migration:
        found = self._store.get(name)
        if found is None:
            raise NotFoundError("migration", name)
        return found

    # --- commands from the API -------------------------------------------------------
    async def create(self, plan_name: str, name: str = "") -> MigrationView:
        """Start a migration of a Ready plan (409 when not Ready or one is running)."""
        view = await self._planner.plan(plan_name)
        if not view.status.ready:
            raise ConflictError("plan_not_ready", f"plan '{plan_name}' is not ready: {_not_ready_reasons(view.status)}")
        if name and not is_dns1123_label(name):
            raise InvalidError(f"migration name '{name}' must be a DNS-1123 label (lower-case letters, digits, '-')")
        async with self._create_lock:
            runs = [m for m in self._store.all() if m.plan == plan_name]
            running = sorted(m.name for m in runs if m.phase is MigrationPhase.RUNNING)
            if running:
                raise ConflictError(
                    "already_running",
                    f"migration '{running[0]}' of plan '{plan_name}' is still running; "
                    "wait for it to finish or cancel it",
                )
            taken = [m.name for m in self._store.all()]
            name = name or next_name(plan_name, taken, len(runs))
            inputs = await self._inputs(view.plan, view.status)
            try:
                migration = new_migration(name, inputs, runs, self._clock())
            except BlueprintError as error:
                raise ConflictError("plan_not_ready", f"plan '{plan_name}' is not ready: {error}") from error
            if not await self._store.create(migration):
                raise AlreadyExistsError("migration", name)
        log.info("migration %s of plan %s created with %d VMs", name, plan_name, len(migration.vms))
        self._announce_migration(migration)
        if migration.completed_at is not None:
            await self._publisher.publish(_finished(migration))
        await self._schedule()
        return self.migration(name)

    async def _inputs(self, plan: Plan, status: PlanStatus) -> MigrationInputs:
        network_map = await self._repo.get(NetworkMap, plan.network_map)
        storage_map = await self._repo.get(StorageMap, plan.storage_map)
        source = await self._repo.get(ProviderRecord, plan.source_provider)
        target = await self._repo.get(ProviderRecord, plan.target_provider)
        if network_map is None or storage_map is None or source is None or target is None:
            raise ConflictError("plan_not_ready", f"plan '{plan.name}' refers to a map or provider that is gone")
        return MigrationInputs(
            plan=plan,
            status=status,
            source=self._mirror.source_view(plan.source_provider),
            network_map=network_map,
            storage_map=storage_map,
            source_provider=source.spec,
            target_provider=target.spec,
        )

    async def cancel(self, name: str, refs: Sequence[str] = ()) -> MigrationView:
        """Cancel the named VMs (by id or name), or every unfinished one when none is named."""
        async with self._locks[name]:
            migration = self._require(name)
            chosen = self._choose(migration, refs)
            ctx, now = _context(migration), self._clock()
            steps = [step for vm in chosen if (step := machine.cancel(vm, ctx, now)).vm != vm]
            if steps:
                log.info("migration %s: cancelling %s", name, ", ".join(s.vm.vm_id for s in steps))
                await self._commit(migration, steps)
        return self.migration(name)

    @staticmethod
    def _choose(migration: Migration, refs: Sequence[str]) -> list[VmMigration]:
        if not refs:
            return [vm for vm in migration.vms if not vm.finished]
        chosen: list[VmMigration] = []
        for ref in refs:
            by_id = [vm for vm in migration.vms if vm.vm_id == ref]
            matches = by_id or [vm for vm in migration.vms if ref in (vm.vm_name, vm.target_name)]
            if not matches:
                raise NotFoundError(
                    "VM", ref, message=f"VM '{ref}' is not part of migration '{migration.name}' (give its id or name)"
                )
            chosen += [vm for vm in matches if vm not in chosen]
        return chosen

    # --- events ------------------------------------------------------------------------
    async def _on_step_event(self, event: StepEvent, delivery: Delivery) -> None:
        await self._apply(event.migration, event.vm_id, lambda vm, ctx, now: machine.on_event(vm, event, ctx, now))

    async def _on_message_failed(self, event: MessageFailed, delivery: Delivery) -> None:
        name, vm_id = event.about.get("migration", ""), event.about.get("vm_id", "")
        if not name or not vm_id:
            return
        log.warning("migration %s VM %s: %s failed in %s (%s: %s)", name, vm_id, event.failed_type,
                    event.service, event.error_code, event.reason)  # fmt: skip
        await self._apply(name, vm_id, lambda vm, ctx, now: machine.on_event(vm, event, ctx, now))

    async def _apply(self, name: str, vm_id: str, transition: Transition) -> None:
        """Run one transition on one VM; grant slots when it gave one back."""
        async with self._locks[name]:
            migration = self._store.get(name)
            vm = migration.vm(vm_id) if migration else None
            if migration is None or vm is None:
                log.debug("event for unknown migration VM %s/%s ignored", name, vm_id)
                return
            step = transition(vm, _context(migration), self._clock())
            if step.vm == vm:
                return
            await self._commit(migration, [step])
        if vm.holds_slot and not step.vm.holds_slot:
            await self._schedule()

    async def _commit(self, before: Migration, steps: Sequence[Step]) -> None:
        """Publish the steps' messages, store the result, announce it (migration lock held)."""
        after = before
        for step in steps:
            after = after.with_vm(step.vm)
        for step in steps:
            with within_vm_trace(after.name, step.vm):
                for message in step.messages:
                    await self._publisher.publish(message)
        if before.phase is MigrationPhase.RUNNING and after.phase is not MigrationPhase.RUNNING:
            after = msgspec.structs.replace(after, completed_at=self._clock())
            await self._publisher.publish(_finished(after))
        if all(step.progress_only for step in steps):
            self._store.stage(after)
            self._save_soon(after.name)
        else:
            await self._store.save(after)
        if any(VmPhase.COMPLETED in step.entered for step in steps):
            self._planner.revalidate_soon()  # its target VM now exists, and is ours
        for step in steps:
            if step.entered:
                log.info("migration %s VM %s: %s", after.name, step.vm.vm_id, " → ".join(p.value for p in step.entered))
            self._broadcaster.publish(
                {"kind": "migration_vm", "name": after.name, "vm": msgspec.to_builtins(vm_view(step.vm))}
            )
        if after.phase is not before.phase:
            log.info("migration %s %s", after.name, after.phase.value)
            self._announce_migration(after)

    def _announce_migration(self, migration: Migration) -> None:
        view = msgspec.to_builtins(migration_view(migration))
        self._broadcaster.publish({"kind": "migration", "name": migration.name, "migration": view})

    # --- progress coalescing -------------------------------------------------------------
    def _save_soon(self, name: str) -> None:
        if name in self._flushes:
            return

        async def save_later() -> None:
            await asyncio.sleep(PROGRESS_SAVE_INTERVAL)
            async with self._locks[name]:
                self._flushes.pop(name, None)
                try:
                    await self._store.flush(name)
                except TemporaryError as error:
                    log.warning("progress of migration %s not stored: %s", name, error)

        self._flushes[name] = asyncio.create_task(save_later(), name=f"save progress {name}")

    async def flush_all(self) -> None:
        """Store every change still only in memory (on shutdown)."""
        for task in list(self._flushes.values()):
            task.cancel()
        self._flushes.clear()
        for migration in self._store.all():
            async with self._locks[migration.name]:
                try:
                    await self._store.flush(migration.name)
                except TemporaryError as error:
                    log.warning("progress of migration %s not stored: %s", migration.name, error)

    # --- slots -------------------------------------------------------------------------
    async def _schedule(self) -> None:
        """Start the queued VMs that fit each source host's budget; tell the rest why they wait."""
        async with self._schedule_lock:
            while True:
                running = [m for m in self._store.all() if m.phase is MigrationPhase.RUNNING]
                plan = schedule(running, self._budget)
                starts = set(plan.start)
                missed = False
                for name in sorted({ref[0] for ref in (*plan.start, *plan.waiting)}):
                    async with self._locks[name]:
                        missed |= await self._grant(name, starts, plan.waiting)
                if not missed:
                    return

    async def _grant(self, name: str, starts: set[tuple[str, str]], waiting: dict[tuple[str, str], str]) -> bool:
        """Apply one migration's part of a schedule; True when a VM to start had left the queue."""
        migration = self._store.get(name)
        if migration is None:
            return False
        ctx, now = _context(migration), self._clock()
        steps: list[Step] = []
        missed = False
        for vm in migration.vms:
            ref = (name, vm.vm_id)
            if vm.phase is not VmPhase.QUEUED:
                missed |= ref in starts
            elif ref in starts:
                traced = msgspec.structs.replace(vm, trace_parent=new_vm_trace(name, vm))
                steps.append(machine.start(traced, ctx, now))
            elif ref in waiting and vm.reason != waiting[ref]:
                steps.append(Step(vm=msgspec.structs.replace(vm, reason=waiting[ref])))
        if steps:
            await self._commit(migration, steps)
        return missed


def _finished(migration: Migration) -> MigrationFinished:
    counts = migration.counts()
    return MigrationFinished(
        message_id=step_id(migration.name, "-", "migration_finished"),
        migration=migration.name,
        plan=migration.plan,
        succeeded=counts.succeeded,
        failed=counts.failed,
        canceled=counts.canceled,
    )
