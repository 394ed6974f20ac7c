"""Conditions and concerns: how plans and maps say what is wrong with them."""

from enum import StrEnum

import msgspec


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
