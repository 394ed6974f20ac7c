"""The inventory lookups one plan validation made, with their answers.

Validation reads a source and a target only through the lookups of
:class:`SourceLookups` and :class:`TargetLookups`. Recorded through
:func:`recording`, they tell whether a result still holds after the inventory changed:
when every lookup answers as before, validating again would give the same result (a
change to a VM the plan does not name, on either side, leaves it alone). Pure.
"""

from dataclasses import dataclass, field
from typing import Protocol

from ferry_shared.inventory import DatastoreRecord, HostRecord, NetworkRecord, TargetVmRecord, VmRecord


class SourceLookups(Protocol):
    def find_vms(self, ref: str) -> list[VmRecord]: ...

    def find_networks(self, ref: str) -> list[NetworkRecord]: ...

    def find_datastores(self, ref: str) -> list[DatastoreRecord]: ...

    def host(self, host_id: str) -> HostRecord | None: ...


class TargetLookups(Protocol):
    def has_namespace(self, name: str) -> bool: ...

    def vm_exists(self, namespace: str, name: str) -> bool: ...

    def vm_with_mac(self, mac: str) -> TargetVmRecord | None: ...


Question = tuple[str, tuple[str, ...]]


@dataclass
class InventoryReads:
    """Each lookup asked (by name and arguments) with the answer it got."""

    source: dict[Question, object] = field(default_factory=dict)
    target: dict[Question, object] = field(default_factory=dict)

    def still_hold(self, source: SourceLookups | None, target: TargetLookups | None) -> bool:
        """Whether every lookup answers the same on these views."""
        return _same(self.source, source) and _same(self.target, target)


def _same(asked: dict[Question, object], view: object) -> bool:
    if view is None:
        return not asked
    return all(getattr(view, name)(*args) == answer for (name, args), answer in asked.items())


class RecordingSource:
    """A source's lookups, each answer written to ``reads``."""

    def __init__(self, view: SourceLookups, reads: InventoryReads) -> None:
        self._view, self._asked = view, reads.source

    def find_vms(self, ref: str) -> list[VmRecord]:
        found = self._asked[("find_vms", (ref,))] = self._view.find_vms(ref)
        return found

    def find_networks(self, ref: str) -> list[NetworkRecord]:
        found = self._asked[("find_networks", (ref,))] = self._view.find_networks(ref)
        return found

    def find_datastores(self, ref: str) -> list[DatastoreRecord]:
        found = self._asked[("find_datastores", (ref,))] = self._view.find_datastores(ref)
        return found

    def host(self, host_id: str) -> HostRecord | None:
        found = self._asked[("host", (host_id,))] = self._view.host(host_id)
        return found


class RecordingTarget:
    """A target's lookups, each answer written to ``reads``."""

    def __init__(self, view: TargetLookups, reads: InventoryReads) -> None:
        self._view, self._asked = view, reads.target

    def has_namespace(self, name: str) -> bool:
        found = self._asked[("has_namespace", (name,))] = self._view.has_namespace(name)
        return found

    def vm_exists(self, namespace: str, name: str) -> bool:
        found = self._asked[("vm_exists", (namespace, name))] = self._view.vm_exists(namespace, name)
        return found

    def vm_with_mac(self, mac: str) -> TargetVmRecord | None:
        found = self._asked[("vm_with_mac", (mac,))] = self._view.vm_with_mac(mac)
        return found
