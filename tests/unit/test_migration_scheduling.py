"""The per-source-host slot budget across migrations (pure)."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ferry_planner.domain.migrations import Migration, VmMigration, VmPhase
from ferry_planner.domain.scheduling import schedule
from ferry_shared.providers import ProviderSpec

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def vm(vm_id: str, *, host: str = "esx-1", phase: VmPhase = VmPhase.QUEUED) -> VmMigration:
    return VmMigration(vm_id=vm_id, vm_name=vm_id, target_name=vm_id, host=host, host_key=f"vc/{host}", phase=phase)


def migration(name: str, *vms: VmMigration, minute: int = 0) -> Migration:
    created = T0 + timedelta(minutes=minute)
    return Migration(
        name=name,
        plan=name,
        created_at=created,
        started_at=created,
        source=ProviderSpec(name="vc", type="vsphere"),
        target=ProviderSpec(name="local", type="local"),
        vms=vms,
    )


def with_phase(m: Migration, vm_id: str, phase: VmPhase) -> Migration:
    found = m.vm(vm_id)
    assert found is not None
    return m.with_vm(msgspec.structs.replace(found, phase=phase))


def test_a_budget_of_two_starts_two_and_says_why_the_others_wait() -> None:
    m = migration("m1", *(vm(f"vm-{i}") for i in range(5)))
    plan = schedule([m], budget=2)
    assert plan.start == (("m1", "vm-0"), ("m1", "vm-1"))
    assert plan.waiting == {("m1", f"vm-{i}"): "waiting for a slot on host esx-1 (2 of 2 running)" for i in range(2, 5)}


def test_a_finished_vm_frees_its_slot_for_the_next_in_plan_order() -> None:
    m = migration("m1", *(vm(f"vm-{i}") for i in range(5)))
    for started in ("vm-0", "vm-1"):
        m = with_phase(m, started, VmPhase.COPY_DISKS)
    assert schedule([m], budget=2).start == ()
    m = with_phase(m, "vm-0", VmPhase.FAILED)
    plan = schedule([m], budget=2)
    assert plan.start == (("m1", "vm-2"),)
    assert set(plan.waiting) == {("m1", "vm-3"), ("m1", "vm-4")}


def test_a_cancelling_vm_keeps_its_slot_until_it_is_cleaned_up() -> None:
    m = migration("m1", vm("vm-0", phase=VmPhase.CANCELING), vm("vm-1"))
    assert schedule([m], budget=1).start == ()
    assert schedule([with_phase(m, "vm-0", VmPhase.CANCELED)], budget=1).start == (("m1", "vm-1"),)


def test_hosts_have_separate_budgets_shared_by_every_migration() -> None:
    older = migration("old", vm("a", phase=VmPhase.CREATE_VM), vm("b"), vm("c", host="esx-2"), minute=0)
    newer = migration("new", vm("d"), vm("e", host="esx-2"), vm("f", host="esx-3"), minute=5)
    plan = schedule([newer, older], budget=2)
    assert plan.start == (("old", "b"), ("old", "c"), ("new", "e"), ("new", "f"))
    assert plan.waiting == {("new", "d"): "waiting for a slot on host esx-1 (2 of 2 running)"}


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        schedule([], budget=0)
