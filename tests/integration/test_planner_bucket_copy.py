"""The planner's copy of its bucket on a real nats-server, followed as the bootstrap does:
not current until the bucket is read, this replica's own writes listed at once (read your
writes, while the watch brings the same revisions back), another writer's changes listed
once the watch brought them."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from nats.js.kv import KeyValue

from ferry_planner.adapters.bucket_copy import BucketCopy
from ferry_planner.adapters.repository import PREFIXES, PlannerRepository
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_shared import subjects
from ferry_shared.bus.kv_watch import follow_entries
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.service import Bus
from ferry_testpeers.waiting import eventually


def plan(name: str, namespace: str = "apps") -> Plan:
    return Plan(name=name, source_provider="vc", target_provider="dir", network_map="net", storage_map="sto",
                target_namespace=namespace, vms=(PlanVm(ref="web-01"),))  # fmt: skip


@dataclass
class Replica:
    kv: KeyValue
    copy: BucketCopy
    repository: PlannerRepository

    async def names(self) -> list[str]:
        return [p.name for p in await self.repository.list(Plan)]


@pytest.fixture
async def replica(bus: Bus) -> AsyncIterator[Replica]:
    kv = await ensure_kv(bus.js, subjects.PLANNER_BUCKET)
    copy = BucketCopy(frozenset(PREFIXES.values()))
    repository = PlannerRepository(kv, copy)
    await repository.create(Plan, "before", plan("before"))
    assert not copy.is_current()
    assert await repository.list(Plan) == [plan("before")], "read from the bucket until the copy is"

    async def on_entry(key: str, revision: int, value: bytes | None) -> None:
        copy.apply(key, revision, value)

    stop = asyncio.Event()
    following = asyncio.create_task(follow_entries(kv, on_entry, stop, initial_done=copy.loaded, health=copy.health))
    await asyncio.wait_for(copy.loaded.wait(), 10)
    try:
        yield Replica(kv=kv, copy=copy, repository=repository)
    finally:
        stop.set()
        await following


async def test_the_copy_is_ready_once_the_bucket_is_read(replica: Replica) -> None:
    assert replica.copy.is_current()
    assert replica.copy.health.check() is None
    assert await replica.names() == ["before"]


async def test_this_replicas_own_writes_are_listed_at_once(replica: Replica) -> None:
    for round_ in range(20):  # the watch brings each write back meanwhile
        name = f"p{round_}"
        revision = await replica.repository.create(Plan, name, plan(name))
        assert name in await replica.names()
        assert revision is not None
        await replica.repository.replace(Plan, name, plan(name, "changed"), revision=revision)
        assert plan(name, "changed") in await replica.repository.list(Plan)
        await replica.repository.delete(Plan, name)
        assert name not in await replica.names()
    # Once a later write is followed, every earlier one came back through the watch too.
    await PlannerRepository(replica.kv).create(Plan, "last", plan("last"))
    await eventually(lambda: "plan.last" in replica.copy.under("plan"), timeout=10, what="the watch caught up")
    assert await replica.names() == ["before", "last"], "no deleted plan came back"


async def test_another_writers_changes_are_listed_once_followed(replica: Replica) -> None:
    other = PlannerRepository(replica.kv)
    await other.create(Plan, "elsewhere", plan("elsewhere"))
    await eventually(lambda: "plan.elsewhere" in replica.copy.under("plan"), timeout=10, what="the plan followed")
    assert await replica.names() == ["before", "elsewhere"]

    await other.delete(Plan, "before")
    await eventually(lambda: "plan.before" not in replica.copy.under("plan"), timeout=10, what="the delete followed")
    assert await replica.names() == ["elsewhere"]
