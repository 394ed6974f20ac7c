"""NetworkMap and StorageMap: where each source network and datastore goes."""

from enum import StrEnum

import msgspec

from ferry_planner.domain.conditions import Condition


class NetworkDestination(StrEnum):
    POD = "pod"
    MULTUS = "multus"
    IGNORED = "ignored"


class NetworkPair(msgspec.Struct, frozen=True, kw_only=True):
    """One source network (by name or id) and where its NICs go."""

    source: str
    destination: NetworkDestination
    nad: str = ""  # "namespace/name" when destination is multus


class StoragePair(msgspec.Struct, frozen=True, kw_only=True):
    """One source datastore (by name or id) and the StorageClass its disks go to."""

    source: str
    storage_class: str
    volume_mode: str = ""  # Filesystem | Block | "" (the class's default)
    access_mode: str = ""  # ReadWriteOnce | ReadWriteMany | ReadWriteOncePod | ""


class NetworkMap(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source_provider: str
    target_provider: str
    pairs: tuple[NetworkPair, ...]


class StorageMap(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source_provider: str
    target_provider: str
    pairs: tuple[StoragePair, ...]


class MapStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Whether every reference in a map exists."""

    ready: bool
    conditions: tuple[Condition, ...] = ()
