"""``GET /api/v1/plans`` from the planner's copy of its bucket (real NATS, the planner's
real bootstrap and HTTP API): the "planner bucket" readiness check, a plan created or
deleted through the API in the very next listing, a plan written by another replica once
followed, and each listed plan the same JSON as ``GET /plans/{name}``."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.service import Bus
from ferry_testpeers.waiting import async_wait_for, eventually

from .test_planner_migration import FakePeers, Planner, make_plan, peers_running, planner_running, seed_inventory

pytestmark = pytest.mark.nats


@pytest.fixture
async def peers(bus: Bus, tmp_path: Path) -> AsyncIterator[FakePeers]:
    await seed_inventory(bus)
    async with peers_running(FakePeers(bus=bus, work_dir=tmp_path / "target")) as running:
        yield running


def _plan(name: str) -> dict[str, Any]:
    return {"name": name, "source_provider": "vc", "target_provider": "kube", "network_map": "net",
            "storage_map": "sto", "target_namespace": "apps", "vms": [{"ref": "web-01"}]}  # fmt: skip


async def _names(planner: Planner) -> list[str]:
    return [p["plan"]["name"] for p in await planner.get("/plans")]


async def test_plans_changed_through_the_api_are_in_the_very_next_listing(bus: Bus, peers: FakePeers) -> None:
    async with planner_running(bus) as planner:
        readiness = planner.service.parts.readiness
        await eventually(lambda: readiness["planner bucket"]() is None, timeout=10, what="the planner bucket read")
        await make_plan(planner)
        for round_ in range(10):
            name = f"q{round_}"
            await planner.post("/plans", _plan(name))
            listed = {p["plan"]["name"]: p for p in await planner.get("/plans")}
            assert name in listed, "created through this replica: listed at once"
            assert listed[name] == await planner.get(f"/plans/{name}")
            assert (await planner.http.delete(f"/api/v1/plans/{name}")).status_code == 204
            assert name not in await _names(planner), "deleted through this replica: gone at once"
        assert await _names(planner) == ["p1"]


async def test_a_plan_stored_by_another_replica_is_listed_with_its_result(bus: Bus, peers: FakePeers) -> None:
    async with planner_running(bus) as planner:
        await make_plan(planner)
        other = PlannerRepository(await ensure_kv(bus.js, subjects.PLANNER_BUCKET))
        p1 = msgspec.json.decode(msgspec.json.encode((await planner.get("/plans/p1"))["plan"]), type=Plan)
        await other.create(Plan, "p2", msgspec.structs.replace(p1, name="p2", vms=(PlanVm(ref="no-such-vm"),)))

        async def listed() -> dict[str, Any] | None:
            found = {p["plan"]["name"]: p for p in await planner.get("/plans")}
            return found.get("p2")

        p2 = await async_wait_for(listed, timeout=10, what="p2 followed into the listing")
        assert not p2["status"]["ready"], "validated like any other plan"
        assert p2 == await planner.get("/plans/p2")
