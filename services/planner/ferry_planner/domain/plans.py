"""Plans: which VMs to move, with which maps, into which namespace (their validation
result types are shared: :mod:`ferry_shared.plans`)."""

from typing import Literal

import msgspec

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
