"""The JSON of ``GET /api/v1/plans``, each plan encoded once per change.

A listing of 500 plans is about 0.5 MB; most listings repeat the last one. Each plan's
encoded view is kept with the plan and the validation result it was encoded from, and
encoded again only when either is another object: both are frozen, and the repository
and :mod:`~ferry_planner.handlers.plan_status` hand out the same objects while nothing
changed. The answer joins the kept bytes, the same bytes as encoding the whole list.
Used by :mod:`~ferry_planner.entrypoints.http_api`, one per router.
"""

from collections.abc import Iterable

import msgspec

from ferry_planner.domain.plans import Plan
from ferry_planner.domain.views import PlanView
from ferry_shared.plans import PlanStatus


class EncodedPlans:
    """Encoded plan views by plan name, for the plans of the last listing."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Plan, PlanStatus, bytes]] = {}

    def listing(self, views: Iterable[PlanView]) -> bytes:
        """The JSON array of ``views``; plans no longer listed are forgotten."""
        before, self._kept = self._kept, {}
        encoded: list[bytes] = []
        for view in views:
            kept = before.get(view.plan.name)
            if kept is None or kept[0] is not view.plan or kept[1] is not view.status:
                kept = (view.plan, view.status, msgspec.json.encode(view))
            self._kept[view.plan.name] = kept
            encoded.append(kept[2])
        return b"[" + b",".join(encoded) + b"]"
