"""Plan results kept between listings: reused while nothing they depend on changed, and
computed again as soon as a map, a provider, the source's or the target's inventory, the
plan itself or one of its migrations changed."""

import dataclasses

import msgspec

from ferry_planner.domain.inventory_view import TargetView
from ferry_planner.domain.maps import StorageMap, StoragePair
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_planner.domain.ports import StoredChange
from ferry_planner.domain.providers import ProviderChange
from ferry_planner.handlers.plans import delete_plan, plan_view, plans, revalidate_plans
from ferry_planner.handlers.providers import update_provider
from ferry_planner.handlers.replicas import take_change_from_elsewhere
from ferry_planner.handlers.start_migration import start_migration
from ferry_shared.credentials import Secret
from ferry_shared.inventory import TargetVmRecord
from ferry_shared.plans import PlanStatus

from .planner_fakes import FakeInventory, FakeResources, FakeRevalidation, World, ready_world, source_vm
from .planner_peers import Peers


def concerns_of(status: PlanStatus) -> set[str]:
    return {concern.id for vm in status.vms for concern in vm.concerns}


def fakes(world: World) -> tuple[FakeResources, FakeInventory]:
    resources, inventory = world.ports.resources, world.ports.inventory
    assert isinstance(resources, FakeResources) and isinstance(inventory, FakeInventory)
    return resources, inventory


async def listed(world: World, name: str = "p1") -> PlanStatus:
    return next(view.status for view in await plans(world.ports) if view.plan.name == name)


async def test_a_plan_is_not_validated_again_while_nothing_it_depends_on_changed() -> None:
    world = ready_world([source_vm(1), source_vm(2)])
    await revalidate_plans(world.ports)
    announced = await listed(world)

    assert await listed(world) is announced
    assert (await plan_view(world.ports, "p1")).status is announced


async def test_a_changed_storage_map_is_seen_by_the_next_listing() -> None:
    world = ready_world([source_vm(1)])
    resources, _ = fakes(world)
    assert (await listed(world)).ready
    stored = await resources.get(StorageMap, "sto")
    assert stored is not None

    unmapped = (StoragePair(source="other", storage_class="standard"),)
    resources.put(StorageMap, "sto", msgspec.structs.replace(stored, pairs=unmapped))

    status = await listed(world)
    assert not status.ready and "vm.storage.unmapped" in concerns_of(status), concerns_of(status)
    assert not (await plan_view(world.ports, "p1")).status.ready


async def test_a_changed_source_vm_is_seen_by_the_next_listing() -> None:
    world = ready_world([source_vm(1)])
    _, inventory = fakes(world)
    assert (await listed(world)).ready

    renamed = msgspec.structs.replace(source_vm(1), name="renamed")
    inventory.set_source("vc", dataclasses.replace(inventory.sources["vc"], vms=[renamed]))

    status = await listed(world)
    assert not status.ready and concerns_of(status) == {"vm.not_found"}


async def test_a_vm_that_appears_on_the_target_is_seen_by_the_next_listing() -> None:
    world = ready_world([source_vm(1)])
    _, inventory = fakes(world)
    assert (await listed(world)).ready

    mac = source_vm(1).nics[0].mac
    inventory.set_target("dir", TargetView(vms=[TargetVmRecord(id="x", name="other", namespace="ns", macs=(mac,))]))

    status = await listed(world)
    assert not status.ready and "vm.target.mac_conflict" in concerns_of(status)


async def test_a_provider_update_is_seen_by_the_next_listing() -> None:
    world = ready_world([source_vm(1)])
    await world.ports.credentials.put("vc", Secret("password"))
    assert (await listed(world)).ready

    await update_provider(world.ports, "vc", ProviderChange(username="admin"))

    status = await listed(world)  # connecting again, with a new generation
    assert not status.ready and {c.type for c in status.conditions} == {"SourceProviderNotReady"}


async def test_a_plan_replaced_under_the_same_name_is_validated_anew() -> None:
    world = ready_world([source_vm(1)])
    resources, _ = fakes(world)
    assert (await listed(world)).ready
    stored = await resources.get(Plan, "p1")
    assert stored is not None

    await delete_plan(world.ports, "p1")
    resources.put(Plan, "p1", msgspec.structs.replace(stored, vms=(PlanVm(ref="nowhere"),)))

    assert concerns_of(await listed(world)) == {"vm.not_found"}


async def test_a_vm_its_migration_completed_is_seen_by_the_next_listing() -> None:
    world = ready_world([source_vm(1)])
    assert (await listed(world)).ready

    await start_migration(world.ports, "p1")
    await Peers().drive(world)

    assert "vm.migrated" in concerns_of(await listed(world))


async def test_a_vm_another_replica_completed_has_the_plans_result_announced_again() -> None:
    world = ready_world([source_vm(1)])
    await start_migration(world.ports, "p1")
    await Peers().drive(world)
    revalidation = world.ports.revalidation
    assert isinstance(revalidation, FakeRevalidation)
    before = revalidation.requests

    await take_change_from_elsewhere(world.ports, "p1-1", lambda: StoredChange(migration="p1-1", vm_id="vm-1"))

    assert revalidation.requests == before + 1


async def test_a_change_to_vms_the_plan_does_not_name_keeps_its_result() -> None:
    world = ready_world([source_vm(1), source_vm(2), source_vm(3)])
    _, inventory = fakes(world)
    plan = await world.ports.resources.get(Plan, "p1")
    assert plan is not None
    await world.ports.resources.replace(Plan, "p1", msgspec.structs.replace(plan, vms=(PlanVm(ref="app-1"),)),
                                        revision=await world.ports.resources.revision(Plan, "p1"))  # fmt: skip
    kept = await listed(world)

    powered_off = msgspec.structs.replace(source_vm(3), power_state="poweredOff")
    inventory.set_source(
        "vc", dataclasses.replace(inventory.sources["vc"], vms=[source_vm(1), source_vm(2), powered_off])
    )
    elsewhere = TargetVmRecord(id="t", name="app-2", namespace="default", macs=(source_vm(2).nics[0].mac,))
    inventory.set_target("dir", TargetView(vms=[elsewhere]))

    assert await listed(world) is kept


async def test_a_vm_renamed_to_the_name_a_plan_uses_makes_that_name_ambiguous_at_once() -> None:
    world = ready_world([source_vm(1), source_vm(2)])
    _, inventory = fakes(world)
    assert (await listed(world)).ready

    namesake = msgspec.structs.replace(source_vm(3), name="app-1")
    inventory.set_source("vc", dataclasses.replace(inventory.sources["vc"], vms=[source_vm(1), source_vm(2), namesake]))

    assert "vm.ambiguous" in concerns_of(await listed(world))


async def test_a_vm_with_the_plans_target_name_on_the_target_is_seen_by_the_next_listing() -> None:
    world = ready_world([source_vm(1), source_vm(2)])
    _, inventory = fakes(world)
    assert (await listed(world)).ready

    inventory.set_target("dir", TargetView(vms=[TargetVmRecord(id="t", name="app-2", namespace="default")]))

    assert "vm.target.exists" in concerns_of(await listed(world))


async def test_the_result_of_a_plan_deleted_elsewhere_is_forgotten_on_the_next_revalidation() -> None:
    world = ready_world([source_vm(1)])
    resources, _ = fakes(world)
    await revalidate_plans(world.ports)
    assert "p1" in world.ports.validated.results

    await resources.delete(Plan, "p1")  # as another replica would, straight in the bucket
    await revalidate_plans(world.ports)

    assert "p1" not in world.ports.validated.results
