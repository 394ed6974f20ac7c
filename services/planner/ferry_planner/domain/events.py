"""Events the planner publishes on NATS."""

from typing import ClassVar

from ferry_planner.domain.plans import PlanStatus
from ferry_shared import subjects
from ferry_shared.messages import Event


class PlanValidated(Event, frozen=True, kw_only=True, tag="ferry.planner.plan_validated.v1"):
    """A plan's validation result changed."""

    subject: ClassVar[str] = subjects.event_subject(subjects.PLANNER, "plan_validated")
    plan_name: str
    status: PlanStatus
