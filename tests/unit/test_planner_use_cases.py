"""The planner's migration use cases over fakes: a whole cold migration, slots, cancel and
failure in every phase, and a crash between storing and publishing at every publish."""

import asyncio
import itertools
from collections.abc import Sequence
from datetime import timedelta

import pytest

from ferry_planner.domain.migration_views import migration_view
from ferry_planner.domain.migrations import PIPELINE, Migration, MigrationPhase, VmMigration, VmPhase
from ferry_planner.handlers.cancel_migration import cancel_migration
from ferry_planner.handlers.deadlines import expire_silent_vms
from ferry_planner.handlers.resume import resume, store_progress
from ferry_planner.handlers.start_migration import start_migration
from ferry_shared.errors import TemporaryError
from ferry_shared.messages import Message
from ferry_shared.migrations import (
    CleanupVm,
    CopyDisk,
    CreateVm,
    DiskCopyProgress,
    MigrationFinished,
    PowerOffSourceVm,
    PrepareVolumes,
    RestoreSourcePowerState,
    StepCommand,
    VmCancelRequested,
    VmPhaseChanged,
    step_fields,
)

from .planner_fakes import MIB, Clock, CrashError, World, ready_world, restarted, source_vm
from .planner_peers import Peers, deliver

PIPELINE_NAMES = [phase.value for phase in PIPELINE]


def migration_of(world: World, name: str = "p1-1") -> Migration:
    found = world.ports.migrations.get(name)
    assert found is not None
    return found


def vm_of(world: World, vm_id: str, name: str = "p1-1") -> VmMigration:
    found = migration_of(world, name).vm(vm_id)
    assert found is not None
    return found


def of_vm(messages: Sequence[Message], kind: type[StepCommand], vm_id: str) -> list[StepCommand]:
    return [m for m in messages if isinstance(m, kind) and m.vm_id == vm_id]


async def test_a_plan_migrates_every_vm_through_the_whole_cold_pipeline() -> None:
    world = ready_world([source_vm(1, disks=2), source_vm(2)])
    started = await start_migration(world.ports, "p1")
    assert started.name == "p1-1" and started.phase == "Running"
    await Peers().drive(world)

    done = migration_of(world)
    assert done.phase is MigrationPhase.SUCCEEDED and done.completed_at is not None
    for vm in done.vms:
        assert [p.name for p in vm.pipeline] == PIPELINE_NAMES
        assert all(p.completed_at is not None for p in vm.pipeline)
        assert all(disk.completed and disk.bytes_done == disk.bytes_total for disk in vm.disks)
    assert [c.disk.key for c in world.publisher.of(CopyDisk) if c.vm_id == "vm-1"] == [2000, 2001]
    assert len(world.publisher.of(MigrationFinished)) == 1
    assert world.publisher.unstored == [], "every message was stored with its VM before it was published"
    assert world.durable.outboxes == {}, "nothing is left to send"
    assert world.durable.migrations["p1-1"] == done, "the bucket holds what memory holds"
    kinds = [change["kind"] for change in world.changes.changes]
    assert kinds[0] == "migration" and kinds[-1] == "migration" and "migration_vm" in kinds


async def test_a_phase_is_announced_only_once_the_vm_was_stored_in_it() -> None:
    world = ready_world([source_vm(1)])
    announced: list[tuple[str, str]] = []
    publish = world.publisher.publish

    async def checking(message: Message) -> object:
        if isinstance(message, VmPhaseChanged):
            stored = world.durable.migrations[message.migration].vm(message.vm_id)
            assert stored is not None
            announced.append((message.phase, stored.phase.value))
        return await publish(message)

    world.publisher.publish = checking  # type: ignore[method-assign]
    await start_migration(world.ports, "p1")
    await Peers().drive(world)
    assert [phase for phase, _ in announced] == PIPELINE_NAMES
    for phase, stored in announced:
        assert PIPELINE_NAMES.index(stored) >= PIPELINE_NAMES.index(phase)


async def test_a_budget_of_one_frees_the_slot_for_the_next_vm_when_one_finishes() -> None:
    world = ready_world([source_vm(1), source_vm(2), source_vm(3)], budget=1)
    started = await start_migration(world.ports, "p1")
    phases = {vm.vm_id: vm.phase for vm in started.vms}
    assert phases == {"vm-1": "StorePowerState", "vm-2": "Queued", "vm-3": "Queued"}
    assert vm_of(world, "vm-2").reason == "waiting for a slot on host HOST-1 (1 of 1 running)"
    await Peers().drive(world)
    done = migration_of(world)
    assert done.phase is MigrationPhase.SUCCEEDED
    assert [c.vm_id for c in world.publisher.of(PowerOffSourceVm)] == ["vm-1", "vm-2", "vm-3"]
    spans = sorted((vm.started_at, vm.completed_at) for vm in done.vms)
    for (_, ended), (began, _) in itertools.pairwise(spans):
        assert ended is not None and began is not None and began >= ended


async def test_a_second_start_while_one_runs_is_refused_and_a_rerun_skips_completed_vms() -> None:
    world = ready_world([source_vm(1)])
    await start_migration(world.ports, "p1")
    with pytest.raises(Exception, match="still running"):
        await start_migration(world.ports, "p1")
    await Peers().drive(world)
    rerun = await start_migration(world.ports, "p1")
    assert rerun.name == "p1-2" and rerun.phase == "Succeeded"
    assert [vm.phase for vm in rerun.vms] == ["Skipped"]
    assert [m.migration for m in world.publisher.of(MigrationFinished)] == ["p1-1", "p1-2"]


IN_FLIGHT = [PowerOffSourceVm, PrepareVolumes, CopyDisk, CreateVm]


@pytest.mark.parametrize("held", IN_FLIGHT, ids=lambda kind: kind.__name__)
async def test_a_cancel_while_a_step_is_in_flight_cleans_up_after_it_and_restores_power(
    held: type[StepCommand],
) -> None:
    world = ready_world([source_vm(1), source_vm(2)])
    peers = Peers(hold={("vm-1", held)})
    await start_migration(world.ports, "p1")
    await peers.drive(world)
    assert vm_of(world, "vm-2").phase is VmPhase.COMPLETED

    canceling = await cancel_migration(world.ports, "p1-1", ["app-1"])
    assert [vm.phase for vm in canceling.vms] == ["Canceling", "Completed"]
    copying = held is CopyDisk
    assert len(of_vm(world.publisher.published, CleanupVm, "vm-1")) == (1 if copying else 0), (
        "a running copy is stopped at once; any other step is waited for"
    )
    assert [e.vm_id for e in world.publisher.of(VmCancelRequested)] == ["vm-1"]
    await peers.release(world, "vm-1", held)

    vm = vm_of(world, "vm-1")
    assert vm.phase is VmPhase.CANCELED and vm.reason == "canceled by the user"
    assert len(of_vm(world.publisher.published, CleanupVm, "vm-1")) == 1
    published = world.publisher.published
    cleanup = published.index(of_vm(published, CleanupVm, "vm-1")[0])
    later_work = [m for m in published[cleanup:] if isinstance(m, PrepareVolumes | CopyDisk | CreateVm)]
    assert later_work == [], "nothing is created for the VM after its cleanup was asked for"
    assert [r.power_state for r in of_vm(published, RestoreSourcePowerState, "vm-1")] == ["poweredOn"]  # type: ignore[attr-defined]
    assert migration_of(world).phase is MigrationPhase.CANCELED


async def test_cancelling_a_queued_vm_ends_it_at_once_and_sends_nothing_for_it() -> None:
    world = ready_world([source_vm(1), source_vm(2)], budget=1)
    peers = Peers(hold={("vm-1", CopyDisk)})
    await start_migration(world.ports, "p1")
    await peers.drive(world)
    canceled = await cancel_migration(world.ports, "p1-1", ["vm-2"])
    assert [vm.phase for vm in canceled.vms] == ["CopyDisks", "Canceled"]
    await peers.release(world, "vm-1", CopyDisk)
    assert [vm.phase for vm in migration_of(world).vms] == [VmPhase.COMPLETED, VmPhase.CANCELED]
    assert [m for m in world.publisher.published if isinstance(m, StepCommand) and m.vm_id == "vm-2"] == []


FAILING = [
    (PowerOffSourceVm, "StorePowerState"),
    (PrepareVolumes, "CreateDataVolumes"),
    (CopyDisk, "CopyDisks"),
    (CreateVm, "CreateVM"),
]


@pytest.mark.parametrize(("failing", "phase"), FAILING, ids=[kind.__name__ for kind, _ in FAILING])
async def test_a_failure_in_any_phase_fails_that_vm_only_cleans_up_and_restores_power(
    failing: type[StepCommand], phase: str
) -> None:
    world = ready_world([source_vm(1), source_vm(2)])
    await start_migration(world.ports, "p1")
    await Peers(fail={("vm-1", failing)}).drive(world)

    failed = vm_of(world, "vm-1")
    assert failed.phase is VmPhase.FAILED
    assert (failed.reason, failed.error_code) == (f"{phase} failed: it broke", "broken")
    published = world.publisher.published
    assert len(of_vm(published, CleanupVm, "vm-1")) == 1
    assert len(of_vm(published, RestoreSourcePowerState, "vm-1")) == 1
    assert len(of_vm(published, VmCancelRequested, "vm-1")) == (1 if failing is CopyDisk else 0)  # type: ignore[arg-type]
    assert vm_of(world, "vm-2").phase is VmPhase.COMPLETED
    assert migration_of(world).phase is MigrationPhase.FAILED


def whole_migration_publishes() -> int:
    world = ready_world([source_vm(1)])

    async def run() -> int:
        await start_migration(world.ports, "p1")
        await Peers().drive(world)
        return len(world.publisher.published)

    return asyncio.run(run())


async def start_and_drive(world: World, peers: Peers) -> None:
    await start_migration(world.ports, "p1")
    await peers.drive(world)


@pytest.mark.parametrize("crash_before", range(whole_migration_publishes()))
async def test_a_crash_between_storing_and_publishing_is_recovered_on_start(crash_before: int) -> None:
    world = ready_world([source_vm(1)], crash_before=crash_before)
    peers = Peers()
    with pytest.raises(CrashError):
        await start_and_drive(world, peers)
    assert world.durable.outboxes, "the crash left a stored outbox unsent"

    again = restarted(world)
    peers.follow(again)
    await resume(again.ports)
    await peers.drive(again)

    done = migration_of(again)
    assert done.phase is MigrationPhase.SUCCEEDED
    vm = vm_of(again, "vm-1")
    assert [p.name for p in vm.pipeline] == PIPELINE_NAMES, "every phase recorded once"
    announced = [m.phase for m in (*world.publisher.published, *again.publisher.published)
                 if isinstance(m, VmPhaseChanged)]  # fmt: skip
    assert sorted(set(announced), key=PIPELINE_NAMES.index) == PIPELINE_NAMES, "no phase went unannounced"
    finished = [m for m in (*world.publisher.published, *again.publisher.published) if isinstance(m, MigrationFinished)]
    assert {m.message_id for m in finished} == {"p1-1:-:migration_finished"}
    assert again.durable.outboxes == {}
    assert again.publisher.unstored == []


async def test_a_change_that_raced_another_writer_sends_nothing_and_can_be_retried() -> None:
    world = ready_world([source_vm(1), source_vm(2)], budget=1)
    peers = Peers(hold={("vm-1", CopyDisk)})
    await start_migration(world.ports, "p1")
    await peers.drive(world)
    before = len(world.publisher.published)
    world.migrations.conflicts = 1
    with pytest.raises(TemporaryError):
        await cancel_migration(world.ports, "p1-1", ["vm-2"])
    assert len(world.publisher.published) == before, "nothing was published for a change not stored"
    assert vm_of(world, "vm-2").phase is VmPhase.QUEUED
    retried = await cancel_migration(world.ports, "p1-1", ["vm-2"])
    assert [vm.phase for vm in retried.vms] == ["CopyDisks", "Canceled"]


async def test_progress_is_announced_at_once_and_stored_later() -> None:
    world = ready_world([source_vm(1)])
    peers = Peers(hold={("vm-1", CopyDisk)})
    await start_migration(world.ports, "p1")
    await peers.drive(world)
    progress = DiskCopyProgress(
        **step_fields("p1-1", "vm-1", "progress", 2000), disk_key=2000, bytes_done=3 * MIB, bytes_total=8 * MIB
    )
    await deliver(world, progress)
    assert vm_of(world, "vm-1").disks[0].bytes_done == 3 * MIB
    assert world.changes.changes[-1]["vm"]["disks"][0]["bytes_done"] == 3 * MIB, "announced at once"
    stored = world.durable.migrations["p1-1"].vm("vm-1")
    assert stored is not None and stored.disks[0].bytes_done == 0, "not stored yet"
    assert world.ports.migrations.staged() == ["p1-1"]
    await store_progress(world.ports)
    stored = world.durable.migrations["p1-1"].vm("vm-1")
    assert stored is not None and stored.disks[0].bytes_done == 3 * MIB
    assert world.ports.migrations.staged() == []


async def test_on_start_a_migration_whose_vms_all_ended_gets_its_end() -> None:
    world = ready_world([source_vm(1)])
    peers = Peers(hold={("vm-1", CreateVm)})
    await start_migration(world.ports, "p1")
    await peers.drive(world)
    await peers.release(world, "vm-1", CreateVm)
    finished = migration_of(world)
    # As if the process died after the VM's last write and before the migration's.
    world.durable.migrations["p1-1"] = Migration(
        **{f: getattr(finished, f) for f in Migration.__struct_fields__ if f != "completed_at"}
    )
    world.durable.outboxes.clear()
    again = restarted(world)
    await resume(again.ports)
    assert migration_of(again).completed_at is not None
    assert [m.migration for m in again.publisher.of(MigrationFinished)] == ["p1-1"]


@pytest.mark.parametrize(("held", "phase", "service"), [
    (PowerOffSourceVm, "StorePowerState", "inventory"),
    (PrepareVolumes, "CreateDataVolumes", "kubevirt-writer"),
    (CopyDisk, "CopyDisks", "transfer"),
    (CreateVm, "CreateVM", "kubevirt-writer"),
])  # fmt: skip
async def test_a_vm_that_hears_nothing_says_whom_it_waits_for_and_fails_at_the_deadline(
    held: type[StepCommand], phase: str, service: str
) -> None:
    world = ready_world([source_vm(1), source_vm(2)])
    peers = Peers(hold={("vm-1", held)})
    await start_migration(world.ports, "p1")
    await peers.drive(world)
    waiting = migration_view(migration_of(world)).vms[0].waiting_for
    assert waiting is not None and (waiting.service, waiting.step) == (service, held.__name__)

    clock = world.ports.clock
    assert isinstance(clock, Clock)
    assert await expire_silent_vms(world.ports) == waiting.since + timedelta(seconds=world.ports.step_deadline)
    assert vm_of(world, "vm-1").phase.value == phase, "not before its deadline"
    clock.now = waiting.since + timedelta(seconds=world.ports.step_deadline)
    assert await expire_silent_vms(world.ports) is None, "nobody else waits"

    vm = vm_of(world, "vm-1")
    assert (vm.phase, vm.error_code) == (VmPhase.FAILED, "step_timeout")
    assert vm.reason.startswith(f"{phase} got no answer from the {service} service ({held.__name__}) for 15 minutes")
    assert len(of_vm(world.publisher.published, CleanupVm, "vm-1")) == 1
    assert len(of_vm(world.publisher.published, RestoreSourcePowerState, "vm-1")) == 1
    assert vm_of(world, "vm-2").phase is VmPhase.COMPLETED


async def test_progress_keeps_a_long_copy_alive_past_the_deadline() -> None:
    world = ready_world([source_vm(1)])
    await start_migration(world.ports, "p1")
    await Peers(hold={("vm-1", CopyDisk)}).drive(world)
    clock = world.ports.clock
    assert isinstance(clock, Clock)
    for done in (1, 2, 3):
        clock.now += timedelta(seconds=world.ports.step_deadline - 5)
        progress = DiskCopyProgress(
            **step_fields("p1-1", "vm-1", "progress", 2000, done), disk_key=2000, bytes_done=done * MIB,
            bytes_total=8 * MIB,
        )  # fmt: skip
        await deliver(world, progress)
        await expire_silent_vms(world.ports)
    assert vm_of(world, "vm-1").phase is VmPhase.COPY_DISKS
