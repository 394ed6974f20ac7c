"""A plan's validation result as the planner announces it: conditions on the plan,
concerns on each VM, and the ``PlanValidated`` event that carries them."""

from enum import StrEnum
from typing import ClassVar

import msgspec

from ferry_shared import subjects
from ferry_shared.messages import Event


class Category(StrEnum):
    CRITICAL = "Critical"
    WARNING = "Warning"
    INFORMATION = "Information"


class Condition(msgspec.Struct, frozen=True, kw_only=True):
    """A finding on a plan or map as a whole (``type`` is machine-readable)."""

    type: str
    category: Category
    message: str


class Concern(msgspec.Struct, frozen=True, kw_only=True):
    """A finding on one VM of a plan."""

    id: str
    category: Category
    label: str
    assessment: str


class VmValidation(msgspec.Struct, frozen=True, kw_only=True):
    """One plan VM as validation resolved it."""

    ref: str
    id: str = ""
    name: str = ""
    target_name: str = ""
    concerns: tuple[Concern, ...] = ()


class PlanStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The result of validation: Ready only with no Critical condition or concern."""

    ready: bool
    conditions: tuple[Condition, ...] = ()
    vms: tuple[VmValidation, ...] = ()


class PlanValidated(Event, frozen=True, kw_only=True, tag="ferry.planner.plan_validated.v1"):
    """A plan's validation result changed."""

    subject: ClassVar[str] = subjects.event_subject(subjects.PLANNER, "plan_validated")
    plan_name: str
    status: PlanStatus
