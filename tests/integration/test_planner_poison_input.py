"""Bad names and references never break the planner: refused before anything is stored,
and a valid plan created afterwards is validated and announced as usual (real NATS, the
planner's real bootstrap and HTTP API)."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ferry_shared.service import Bus
from ferry_testpeers.waiting import async_wait_for

from .test_planner_migration import FakePeers, Planner, make_plan, peers_running, planner_running, seed_inventory

pytestmark = pytest.mark.nats

BAD_NAMES = ["has space", "star*", "nul\x00", "newline\n", "x" * 1_000_000]
"""Refused wherever a DNS-1123 name is asked for."""
BAD_REFS = ["nul\x00", "newline\n", "x" * 1_000_000]
"""Refused even where a source object's name is asked for (those may hold spaces and '*')."""


@pytest.fixture
async def peers(bus: Bus, tmp_path: Path) -> AsyncIterator[FakePeers]:
    await seed_inventory(bus)
    async with peers_running(FakePeers(bus=bus, work_dir=tmp_path / "target")) as running:
        yield running


def _plan(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "bad", "source_provider": "vc", "target_provider": "kube", "network_map": "net",
                            "storage_map": "sto", "target_namespace": "apps", "vms": [{"ref": "web-01"}]}  # fmt: skip
    return body | changes


async def _post_bad_input(planner: Planner) -> list[int]:
    codes = []
    for bad in BAD_NAMES:
        for field in ("name", "source_provider", "target_provider", "network_map", "storage_map", "target_namespace"):
            codes.append((await planner.http.post("/api/v1/plans", json=_plan(**{field: bad}))).status_code)
        codes.append(
            (await planner.http.post("/api/v1/plans", json=_plan(vms=[{"ref": "a", "target_name": bad}]))).status_code
        )
        for path in ("/networkmaps", "/storagemaps"):
            for field in ("name", "source_provider", "target_provider"):
                body: dict[str, Any] = {"name": "m", "source_provider": "vc", "target_provider": "kube", "pairs": []}
                body[field] = bad
                codes.append((await planner.http.post(f"/api/v1{path}", json=body)).status_code)
        for path in ("/plans", "/networkmaps", "/storagemaps", "/providers", "/migrations"):
            codes.append((await planner.http.get(f"/api/v1{path}/{quote(bad[:5000], safe='')}")).status_code)
    for bad in BAD_REFS:
        codes.append((await planner.http.post("/api/v1/plans", json=_plan(vms=[{"ref": bad}]))).status_code)
        pair = {"source": bad, "destination": "pod"}
        body = {"name": "m", "source_provider": "vc", "target_provider": "kube", "pairs": [pair]}
        codes.append((await planner.http.post("/api/v1/networkmaps", json=body)).status_code)
    return codes


async def test_bad_names_are_refused_and_a_valid_plan_after_them_is_announced(bus: Bus, peers: FakePeers) -> None:
    async with planner_running(bus) as planner:
        codes = await _post_bad_input(planner)
        assert all(400 <= code < 500 for code in codes), codes
        for path in ("/plans", "/networkmaps", "/storagemaps", "/providers"):
            assert await planner.get(path) == [], f"nothing bad was stored under {path}"
        huge = await planner.http.post("/api/v1/plans", json=_plan(name="x" * 1_000_000))
        assert huge.status_code == 422 and len(huge.text) < 2000, "the answer does not repeat the input"
        assert huge.json()["reason"] == "malformed_request" and "DNS-1123" in huge.json()["message"]

        odd = _plan(name="odd", vms=[{"ref": "Finance DB (prod) *"}, {"ref": "no-such-vm"}])
        assert (await planner.http.post("/api/v1/plans", json=odd)).status_code == 201, "source names may hold these"
        await make_plan(planner)

        async def announced() -> bool:
            return any(c["kind"] == "plan_status" and c["name"] == "p1" and c["ready"] for c in planner.sse)

        await async_wait_for(announced, timeout=10, what="p1's status event")
        listed = {p["plan"]["name"]: p["status"] for p in await planner.get("/plans")}
        assert set(listed) == {"odd", "p1"}
        assert not listed["odd"]["ready"], "an unknown VM is a plan concern"
