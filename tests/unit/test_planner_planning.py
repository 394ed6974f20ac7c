"""The planner's provider and plan use cases over fakes: ids derived from what a message is
about, secrets kept apart, and plan results announced once per change."""

import dataclasses
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ferry_planner.domain.migrations import VmPhase
from ferry_planner.domain.plans import Plan
from ferry_planner.handlers.cancel_migration import cancel_migration
from ferry_planner.handlers.errors import AlreadyExistsError, ConflictError, InvalidError
from ferry_planner.handlers.plans import revalidate_plans
from ferry_planner.handlers.providers import add_provider, delete_provider, provider
from ferry_planner.handlers.start_migration import start_migration
from ferry_shared.credentials import Secret
from ferry_shared.migrations import CopyDisk, CreateVm, RestoreSourcePowerState
from ferry_shared.plans import PlanValidated
from ferry_shared.providers import ConnectProvider, DisconnectProvider, ProviderPhase, ProviderSpec, ProviderStatus

from .planner_fakes import SOURCE, FakeCredentials, FakeInventory, FakeResources, ready_world, source_vm
from .planner_peers import Peers


async def test_a_provider_added_again_after_a_delete_is_connected_by_a_new_message() -> None:
    world = ready_world([source_vm(1)])
    spec = msgspec.structs.replace(SOURCE, name="vc2")
    await add_provider(world.ports, spec, Secret("s3cret"))
    with pytest.raises(AlreadyExistsError):
        await add_provider(world.ports, spec, Secret("s3cret"))
    await delete_provider(world.ports, "vc2")
    await add_provider(world.ports, spec, Secret("other"))

    connects = world.publisher.of(ConnectProvider)
    assert [c.provider.name for c in connects] == ["vc2", "vc2"]
    assert connects[0].message_id != connects[1].message_id, "a retry deduplicates, a new provider does not"
    assert [d.provider_name for d in world.publisher.of(DisconnectProvider)] == ["vc2"]
    credentials = world.ports.credentials
    assert isinstance(credentials, FakeCredentials) and credentials.secrets["vc2"].reveal() == "other"
    assert "s3cret" not in repr(world.publisher.published) and "other" not in repr(world.publisher.published)
    assert (await provider(world.ports, "vc2")).has_credentials


@pytest.mark.parametrize("name", ["vc 2", "vc*", "vc\x00", "vc\n", "x" * 64, "VC"])
async def test_a_name_that_is_no_dns1123_label_is_refused_before_anything_is_stored(name: str) -> None:
    world = ready_world([source_vm(1)])
    with pytest.raises(InvalidError):
        await add_provider(world.ports, msgspec.structs.replace(SOURCE, name=name), Secret("pw"))
    assert world.publisher.published == []


@pytest.mark.parametrize(
    ("path", "roots", "said"),
    [
        ("/elsewhere/vms", ("/srv/ferry",), "outside the allowed directories FERRY_LOCAL_TARGET_ROOTS=/srv/ferry"),
        ("/srv/ferry-other", ("/srv/ferry",), "outside the allowed directories"),
        ("/srv/ferry/../etc", ("/srv/ferry",), "outside the allowed directories"),
        ("vms", ("/srv/ferry",), "is not absolute"),
        ("/srv/ferry/vms", (), "local targets are disabled"),
    ],
)
async def test_a_local_provider_outside_the_allowed_roots_is_refused(
    path: str, roots: tuple[str, ...], said: str
) -> None:
    world = ready_world([source_vm(1)])
    ports = dataclasses.replace(world.ports, local_target_roots=tuple(Path(root) for root in roots))
    with pytest.raises(InvalidError) as raised:
        await add_provider(ports, ProviderSpec(name="disk", type="local", path=path), None)
    assert said in raised.value.message
    assert world.publisher.published == []
    allowed = dataclasses.replace(world.ports, local_target_roots=(Path("/srv/ferry"),))
    await add_provider(allowed, ProviderSpec(name="disk", type="local", path="/srv/ferry/vms"), None)


async def test_a_plan_result_is_announced_once_per_change_and_again_when_it_comes_back() -> None:
    world = ready_world([source_vm(1)])
    inventory = world.ports.inventory
    assert isinstance(inventory, FakeInventory)
    await revalidate_plans(world.ports)
    await revalidate_plans(world.ports)  # nothing changed: nothing announced
    inventory.set_status("vc", ProviderStatus(phase=ProviderPhase.ERROR, generation=1, reason="unreachable"))
    await revalidate_plans(world.ports)
    inventory.set_status("vc", ProviderStatus(phase=ProviderPhase.READY, generation=1))
    await revalidate_plans(world.ports, {"vc"})

    announced = world.publisher.of(PlanValidated)
    assert [a.status.ready for a in announced] == [True, False, True]
    assert len({a.message_id for a in announced}) == 3, "the same result, announced again, is a new message"
    assert {"kind": "inventory", "name": "vc"} in world.changes.changes


async def test_a_provider_a_migration_still_needs_cannot_be_deleted() -> None:
    world = ready_world([source_vm(1)])
    peers = Peers(hold={("vm-1", CopyDisk)}, fail={("vm-1", RestoreSourcePowerState)})
    await start_migration(world.ports, "p1")
    await peers.drive(world)
    with pytest.raises(ConflictError, match="used by migration 'p1-1'") as refused:
        await delete_provider(world.ports, "vc")
    assert refused.value.code == "provider_in_use"
    peers.hold.clear()
    peers.fail.clear()
    peers.hold.add(("vm-1", RestoreSourcePowerState))
    await cancel_migration(world.ports, "p1-1")
    await peers.drive(world)
    migration = world.ports.migrations.get("p1-1")
    assert migration is not None and migration.vms[0].phase is VmPhase.CANCELED
    with pytest.raises(ConflictError, match="power a source VM back on"):
        await delete_provider(world.ports, "vc")  # its source is not powered on yet
    await peers.release(world, "vm-1", RestoreSourcePowerState)
    await delete_provider(world.ports, "vc")


async def test_a_source_that_could_not_be_powered_back_on_is_said_in_the_vms_reason() -> None:
    world = ready_world([source_vm(1)])
    await start_migration(world.ports, "p1")
    await Peers(fail={("vm-1", CreateVm), ("vm-1", RestoreSourcePowerState)}).drive(world)
    migration = world.ports.migrations.get("p1-1")
    assert migration is not None
    vm = migration.vms[0]
    assert vm.phase is VmPhase.FAILED and not vm.restore_pending
    assert vm.reason == "CreateVM failed: it broke; the source VM could not be powered back on: it broke"


class ResourcesWithABadName(FakeResources):
    """Raises on one name, as the bucket does on a key it cannot hold."""

    async def get(self, kind: type[Any], name: str) -> Any:
        if name == "bad map":
            raise ValueError("nats: invalid key")
        return await super().get(kind, name)


async def test_one_plan_that_cannot_be_validated_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    world = ready_world([source_vm(1)])
    resources = ResourcesWithABadName()
    assert isinstance(world.ports.resources, FakeResources)
    resources.records, resources.revisions = world.ports.resources.records, world.ports.resources.revisions
    good = await world.ports.resources.get(Plan, "p1")
    assert good is not None
    resources.records[(Plan, "a-bad")] = msgspec.structs.replace(good, name="a-bad", network_map="bad map")
    ports = dataclasses.replace(world.ports, resources=resources)

    await revalidate_plans(ports)

    assert [a.plan_name for a in world.publisher.of(PlanValidated)] == ["p1"]
    assert "revalidating plan a-bad failed" in caplog.text
