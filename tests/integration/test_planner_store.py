"""The planner's migration store on real NATS: each VM stored with its outbox, unsent
outboxes found again by a new process, and records of earlier versions still read."""

from datetime import UTC, datetime

import msgspec
import pytest

from ferry_planner.adapters.migration_store import MigrationStore, vm_key
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.domain.migrations import Migration, VmMigration, VmPhase
from ferry_planner.domain.outbox import Commit, Outbox
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.migrations import PowerOffSourceVm, VmPhaseChanged, step_fields
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = ProviderSpec(name="vc", type="vsphere", url="https://vc/sdk", username="u", insecure=True)
TARGET = ProviderSpec(name="dir", type="local", path="/t")


def migration(*vms: VmMigration) -> Migration:
    return Migration(name="m1", plan="p1", created_at=T0, started_at=T0, source=SOURCE, target=TARGET, vms=vms)


def vm(vm_id: str, **fields: object) -> VmMigration:
    return VmMigration(vm_id=vm_id, vm_name=vm_id, target_name=vm_id, host="h", host_key="vc/h", **fields)  # type: ignore[arg-type]


async def test_a_vm_and_its_outbox_are_stored_together_and_found_again_until_sent(bus: Bus) -> None:
    kv = await ensure_kv(bus.js, subjects.PLANNER_BUCKET)
    store = MigrationStore(kv)
    await store.load()
    before = migration(vm("vm-1"), vm("vm-2"))
    assert await store.create(before, Outbox(migration="m1", vm_id=""))
    started = msgspec.structs.replace(before.vms[0], phase=VmPhase.STORE_POWER_STATE)
    messages = (
        VmPhaseChanged(**step_fields("m1", "vm-1", "phase", "Started"), plan="p1", vm_name="vm-1", phase="Started"),
        PowerOffSourceVm(**step_fields("m1", "vm-1", "power_off_source_vm"), source=SOURCE),
    )
    outbox = Outbox(migration="m1", vm_id="vm-1", messages=messages)
    await store.store(Commit(before=before, after=before.with_vm(started), outboxes=(outbox,)))

    restarted = MigrationStore(kv)  # as if the process died before publishing
    await restarted.load()
    assert restarted.unsent() == [outbox]
    loaded = restarted.get("m1")
    assert loaded is not None and loaded.vms[0].phase is VmPhase.STORE_POWER_STATE
    await restarted.sent("m1", outbox)
    assert restarted.unsent() == []

    again = MigrationStore(kv)
    await again.load()
    assert again.unsent() == [], "a sent outbox is cleared in the bucket too"
    assert again.get("m1") == loaded


async def test_a_vm_written_by_an_earlier_version_keeps_its_power_state(bus: Bus) -> None:
    kv = await ensure_kv(bus.js, subjects.PLANNER_BUCKET)
    store = MigrationStore(kv)
    await store.load()
    assert await store.create(migration(vm("vm-1"), vm("vm-2")), Outbox(migration="m1", vm_id=""))
    old = msgspec.to_builtins(vm("vm-1", phase=VmPhase.COPY_DISKS, power_off_requested=True))
    del old["source_power_state"], old["source_power_recorded"]
    await kv.put(vm_key("m1", "vm-1"), msgspec.json.encode({**old, "original_power_state": "poweredOn"}))
    await kv.put(
        vm_key("m1", "vm-2"), msgspec.json.encode({**old, "vm_id": "vm-2", "power_state_at_start": "suspended"})
    )

    loaded = MigrationStore(kv)
    await loaded.load()
    found = loaded.get("m1")
    assert found is not None
    first, second = found.vms
    assert (first.source_power_state, first.source_power_recorded) == ("poweredOn", True)
    assert (second.source_power_state, second.source_power_recorded) == ("suspended", False)


async def test_a_stored_plan_that_no_longer_decodes_is_skipped_and_can_be_deleted(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    kv = await ensure_kv(bus.js, subjects.PLANNER_BUCKET)
    repository = PlannerRepository(kv)
    good = Plan(name="good", source_provider="vc", target_provider="kube", network_map="net", storage_map="sto",
                target_namespace="apps", vms=(PlanVm(ref="web-01"),))  # fmt: skip
    await repository.create(Plan, "good", good)
    await kv.put("plan.broken", b'{"name": 7}')

    assert await repository.list(Plan) == [good]
    assert await repository.get(Plan, "broken") is None
    assert "plan.broken" in caplog.text, "the log names the key"
    assert await repository.revision(Plan, "broken") > 0, "still there, so it can be deleted"
    await repository.delete(Plan, "broken")
    assert await repository.revision(Plan, "broken") == 0
