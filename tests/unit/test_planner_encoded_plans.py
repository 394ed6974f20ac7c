"""The encoded plan listing is the same JSON as encoding the views, and re-encodes only
the plans whose plan or validation result changed."""

import msgspec

from ferry_planner.domain.plans import Plan, PlanVm
from ferry_planner.domain.views import PlanView
from ferry_planner.entrypoints.encoded_plans import EncodedPlans
from ferry_shared.plans import Category, Condition, PlanStatus


def plan(name: str) -> Plan:
    return Plan(name=name, source_provider="vc", target_provider="dir", network_map="net", storage_map="sto",
                target_namespace="apps", vms=(PlanVm(ref="web-01"),))  # fmt: skip


def view(name: str, status: PlanStatus) -> PlanView:
    return PlanView(plan=plan(name), status=status)


READY = PlanStatus(ready=True)


def test_the_encoded_listing_is_the_json_of_the_views() -> None:
    critical = Condition(type="StorageMapNotFound", category=Category.CRITICAL, message="no storage map")
    views = [view("a", READY), view("b", PlanStatus(ready=False, conditions=(critical,)))]
    assert EncodedPlans().listing(views) == msgspec.json.encode(views)
    assert EncodedPlans().listing([]) == b"[]"


def test_a_plan_is_encoded_again_only_when_its_plan_or_result_changed() -> None:
    listings = EncodedPlans()
    a, b = view("a", READY), view("b", READY)
    listings.listing([a, b])
    kept = listings._kept["a"][2]
    listings.listing([a, b])
    assert listings._kept["a"][2] is kept, "same plan and result: the same bytes"

    not_ready = PlanStatus(ready=False)
    changed = PlanView(plan=a.plan, status=not_ready)
    assert listings.listing([changed, b]) == msgspec.json.encode([changed, b])
    assert listings._kept["a"][2] is not kept


def test_a_plan_no_longer_listed_is_forgotten() -> None:
    listings = EncodedPlans()
    listings.listing([view("a", READY), view("b", READY)])
    only_b = [view("b", READY)]
    assert listings.listing(only_b) == msgspec.json.encode(only_b)
    assert set(listings._kept) == {"b"}
