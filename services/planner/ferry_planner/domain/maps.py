"""NetworkMap and StorageMap: where each source network and datastore goes."""

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TypeVar

import msgspec

from ferry_shared.inventory import Record
from ferry_shared.plans import Condition


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


Finder = Callable[[str], Sequence[Record]]
"""Finds inventory records by name or id (``SourceView.find_networks`` …)."""

P = TypeVar("P", NetworkPair, StoragePair)


def _pair_for(pairs: Sequence[P], item_id: str, item_name: str, find: Finder) -> P | None:
    """The first pair whose source names the item, by id or by name; a pair written
    with a name is resolved through the inventory to the ids it stands for."""
    for pair in pairs:
        ids = {record.id for record in find(pair.source)} | {pair.source}
        if item_id in ids or (item_name and item_name == pair.source):
            return pair
    return None


class NetworkMap(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source_provider: str
    target_provider: str
    pairs: tuple[NetworkPair, ...]

    def pair_for(self, network_id: str, network_name: str, find: Finder) -> NetworkPair | None:
        """Where a NIC on this network goes (None when unmapped)."""
        return _pair_for(self.pairs, network_id, network_name, find)


class StorageMap(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source_provider: str
    target_provider: str
    pairs: tuple[StoragePair, ...]

    def pair_for(self, datastore_id: str, datastore_name: str, find: Finder) -> StoragePair | None:
        """Where a disk on this datastore goes (None when unmapped)."""
        return _pair_for(self.pairs, datastore_id, datastore_name, find)


class MapStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Whether every reference in a map exists."""

    ready: bool
    conditions: tuple[Condition, ...] = ()
