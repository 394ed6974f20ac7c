"""The inventory as last sent to the sink, and how vCenter's changes alter it.

:class:`InventoryMirror` owns the object cache and the records built from it. A full
load replaces both; a batch of ``ObjectUpdate`` s (enter/modify/leave) is merged into
the cache and only the affected records are rebuilt: the changed objects themselves,
or every record when a non-VM object changed something others are built from (a name,
a parent, a portgroup key), e.g. a renamed host or folder. Records that come out equal
to what was sent are not sent again.
"""

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import ManagedObject

from ferry_inventory.adapters.vsphere.cache import ObjectCache, ObjectState, moid
from ferry_inventory.adapters.vsphere.nics import NetworkLookup
from ferry_inventory.adapters.vsphere.properties import REFERENCED_PATHS, paths_of
from ferry_inventory.adapters.vsphere.records import build_record
from ferry_inventory.domain.ports import KindAndId, KindAndRecord

log = logging.getLogger(__name__)

ObjectUpdate = vmodl.query.PropertyCollector.ObjectUpdate
Refetch = Callable[[ManagedObject], ObjectState | None]
"""Reads one object's properties again (None when it is gone)."""

_ASSIGN = "assign"
_REMOVALS = frozenset({"remove", "indirectRemove"})


@dataclass
class Changes:
    put: list[KindAndRecord] = field(default_factory=list)
    deleted: list[KindAndId] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.put or self.deleted)


def _fingerprint(state: ObjectState | None) -> tuple[object, ...] | None:
    """What other records read from this object."""
    if state is None:
        return None
    values: list[object] = []
    for path in sorted(REFERENCED_PATHS):
        value = state.props.get(path)
        if isinstance(value, ManagedObject):
            value = moid(value)
        elif isinstance(value, vim.OpaqueNetwork.Summary):
            value = value.opaqueNetworkId
        values.append(value)
    return tuple(values)


def _merge(state: ObjectState, changes: Sequence[vmodl.query.PropertyCollector.Change]) -> bool:
    """Apply property changes; False when one cannot be applied here (a nested or keyed
    path, an array ``add``) and the object must be read again."""
    collected = paths_of(state.ref)
    for change in changes:
        if change.name not in collected:
            return False
        if change.op == _ASSIGN:
            state.props[change.name] = change.val
        elif change.op in _REMOVALS:
            state.props.pop(change.name, None)
        else:
            return False
    return True


class InventoryMirror:
    """The cache and the records built from it, for one session's lifetime."""

    def __init__(self) -> None:
        self.cache = ObjectCache()
        self._records: dict[str, KindAndRecord] = {}

    def replace(self, states: Iterable[ObjectState]) -> list[KindAndRecord]:
        """Start over from a full load; returns every record."""
        self.cache = ObjectCache()
        self._records = {}
        for state in states:
            self.cache.put(state)
        self._rebuild(state.id for state in self.cache)
        return list(self._records.values())

    def counts(self) -> dict[str, int]:
        return dict(Counter(kind for kind, _ in self._records.values()))

    def apply(self, updates: Sequence[ObjectUpdate], refetch: Refetch) -> Changes:
        """Merge a batch of updates; returns the records to put and delete."""
        dirty: set[str] = set()
        structural = False
        for update in updates:
            object_id = moid(update.obj)
            dirty.add(object_id)
            before = self.cache.get(object_id)
            after = None if update.kind == "leave" else self._updated(update, before, refetch)
            if after is None:
                self.cache.pop(object_id)
            else:
                self.cache.put(after)
            if update.missingSet:
                log.debug("%s: vCenter could not read %s", object_id, [m.path for m in update.missingSet])
            is_vm = isinstance(update.obj, vim.VirtualMachine)
            structural = structural or (not is_vm and _fingerprint(before) != _fingerprint(after))
        targets = {state.id for state in self.cache} | dirty if structural else dirty
        return self._rebuild(targets)

    @staticmethod
    def _updated(update: ObjectUpdate, before: ObjectState | None, refetch: Refetch) -> ObjectState | None:
        if update.kind == "enter" or before is None:
            state = ObjectState(ref=update.obj)
        else:
            state = ObjectState(ref=before.ref, props=dict(before.props))
        if _merge(state, update.changeSet):
            return state
        return refetch(update.obj)

    def _rebuild(self, object_ids: Iterable[str]) -> Changes:
        changes = Changes()
        networks = NetworkLookup.of(self.cache)
        for object_id in object_ids:
            state = self.cache.get(object_id)
            old = self._records.get(object_id)
            new = build_record(state, self.cache, networks) if state is not None else None
            if new is None:
                if old is not None:
                    del self._records[object_id]
                    changes.deleted.append((old[0], object_id))
            elif old != new:
                self._records[object_id] = new
                changes.put.append(new)
        return changes
