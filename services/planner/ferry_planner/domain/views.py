"""What the planner's API shows: resources together with their computed status."""

import msgspec

from ferry_planner.domain.maps import MapStatus, NetworkMap, StorageMap
from ferry_planner.domain.plans import Plan
from ferry_shared.plans import PlanStatus
from ferry_shared.providers import ProviderSpec, ProviderStatus


class ProviderView(msgspec.Struct, frozen=True, kw_only=True):
    spec: ProviderSpec
    generation: int
    has_credentials: bool
    status: ProviderStatus


class NetworkMapView(msgspec.Struct, frozen=True, kw_only=True):
    map: NetworkMap
    status: MapStatus


class StorageMapView(msgspec.Struct, frozen=True, kw_only=True):
    map: StorageMap
    status: MapStatus


class PlanView(msgspec.Struct, frozen=True, kw_only=True):
    plan: Plan
    status: PlanStatus
