"""Plans: which VMs to move, with which maps, into which namespace."""

from typing import Literal

import msgspec

from ferry_planner.domain.conditions import Concern, Condition

PlanType = Literal["cold"]


class PlanVm(msgspec.Struct, frozen=True, kw_only=True):
    """A VM named by ``ref`` (its name or its id), with an optional target name."""

    ref: str
    target_name: str = ""


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source_provider: str
    target_provider: str
    network_map: str
    storage_map: str
    target_namespace: str
    vms: tuple[PlanVm, ...]
    type: PlanType = "cold"


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
