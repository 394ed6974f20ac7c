"""Listing plans from memory: the copy of the planner bucket keeps the newest revision of
each key whichever side gave it, and the repository lists from it while it is current and
applies its own writes to it at once."""

import msgspec
import pytest

from ferry_planner.adapters.bucket_copy import BucketCopy
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.domain.plans import Plan, PlanVm


def plan(name: str, namespace: str = "apps") -> Plan:
    return Plan(name=name, source_provider="vc", target_provider="dir", network_map="net", storage_map="sto",
                target_namespace=namespace, vms=(PlanVm(ref="web-01"),))  # fmt: skip


def encoded(value: Plan) -> bytes:
    return msgspec.json.encode(value)


def current_copy() -> BucketCopy:
    copy = BucketCopy(frozenset({"plan", "provider"}))
    copy.loaded.set()
    copy.health.ready()
    return copy


class BucketReadError(Exception):
    """A listing read the bucket itself."""


class FakeKv:
    """The calls the repository's writes make, with revisions; reading every key raises."""

    def __init__(self) -> None:
        self.revision = 0
        self.data: dict[str, tuple[int, bytes]] = {}

    def _put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.data[key] = (self.revision, value)
        return self.revision

    async def create(self, key: str, value: bytes) -> int:
        return self._put(key, value)

    async def update(self, key: str, value: bytes, last: int) -> int:
        assert self.data[key][0] == last
        return self._put(key, value)

    async def delete(self, key: str) -> bool:
        self.revision += 1
        self.data.pop(key, None)
        return True

    @property
    def _js(self) -> object:
        """What reading every key of the bucket starts with (``read_matching``)."""
        raise BucketReadError


def test_an_older_revision_arriving_after_a_newer_one_is_ignored() -> None:
    copy = current_copy()
    copy.apply("plan.a", 5, encoded(plan("a", "new")))
    copy.apply("plan.a", 3, encoded(plan("a", "old")))
    assert copy.under("plan")["plan.a"].revision == 5


def test_a_deleted_key_is_not_brought_back_by_a_late_older_value() -> None:
    copy = current_copy()
    copy.apply("plan.a", 4, encoded(plan("a")))
    copy.deleted("plan.a")
    copy.apply("plan.a", 4, encoded(plan("a")))
    assert "plan.a" not in copy.under("plan")
    copy.apply("plan.a", 9, encoded(plan("a")))
    assert "plan.a" in copy.under("plan"), "created again later"


def test_a_key_found_gone_on_a_new_watch_is_deleted() -> None:
    copy = current_copy()
    copy.apply("plan.a", 4, encoded(plan("a")))
    copy.apply("plan.a", 0, None)
    assert dict(copy.under("plan")) == {}


def test_keys_of_other_prefixes_are_not_kept() -> None:
    copy = current_copy()
    copy.apply("migration.m1.vm-1", 2, b"{}")
    assert not copy.holds("migration.m1.vm-1")
    assert copy.holds("plan.a")
    assert dict(copy.under("plan")) == {}


def test_the_copy_is_current_only_once_read_and_while_followed() -> None:
    copy = BucketCopy(frozenset({"plan"}))
    assert not copy.is_current()
    assert copy.health.check() is not None
    copy.loaded.set()
    copy.health.ready()
    assert copy.is_current()
    copy.health.not_ready("the KV watch is broken")
    assert not copy.is_current()


async def test_the_repository_lists_its_own_writes_from_the_copy_at_once() -> None:
    kv, copy = FakeKv(), current_copy()
    repository = PlannerRepository(kv, copy)  # type: ignore[arg-type]
    revision = await repository.create(Plan, "b", plan("b"))
    await repository.create(Plan, "a", plan("a"))
    assert await repository.list(Plan) == [plan("a"), plan("b")]

    assert revision is not None
    await repository.replace(Plan, "b", plan("b", "other"), revision=revision)
    assert await repository.list(Plan) == [plan("a"), plan("b", "other")]

    await repository.delete(Plan, "a")
    assert await repository.list(Plan) == [plan("b", "other")]


async def test_a_listing_hands_out_the_same_plan_while_its_revision_holds() -> None:
    repository = PlannerRepository(FakeKv(), current_copy())  # type: ignore[arg-type]
    await repository.create(Plan, "a", plan("a"))
    [first] = await repository.list(Plan)
    [again] = await repository.list(Plan)
    assert again is first


async def test_the_repository_reads_the_bucket_while_the_copy_is_not_current() -> None:
    copy = current_copy()
    copy.health.not_ready("the KV watch is broken")
    repository = PlannerRepository(FakeKv(), copy)  # type: ignore[arg-type]
    with pytest.raises(BucketReadError):
        await repository.list(Plan)
