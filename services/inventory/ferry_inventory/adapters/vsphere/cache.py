"""The adapter's copy of vCenter's objects: each one's collected properties by path.

Filled by the full load, kept current by the change feed; records are built from it
alone (names of hosts, datastores, networks and folders are looked up here, never
fetched). Only the worker thread that owns a watcher's session touches it.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import ManagedObject

T = TypeVar("T")


def moid(obj: ManagedObject) -> str:
    """A managed object's id (``vm-42``)."""
    return str(obj._moId)


@dataclass
class ObjectState:
    """One managed object and the properties collected for it."""

    ref: ManagedObject
    props: dict[str, object] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return moid(self.ref)

    def get(self, path: str, kind: type[T]) -> T | None:
        value = self.props.get(path)
        return value if isinstance(value, kind) else None

    def items(self, path: str, kind: type[T]) -> list[T]:
        """The elements of an array property that are ``kind``s."""
        value = self.props.get(path)
        return [item for item in value if isinstance(item, kind)] if isinstance(value, list) else []

    def text(self, path: str) -> str:
        value = self.props.get(path)
        return str(value) if value is not None else ""

    def flag(self, path: str) -> bool:
        return self.props.get(path) is True

    def number(self, path: str) -> int:
        value = self.props.get(path)
        return int(value) if isinstance(value, int) else 0

    def ref_id(self, path: str) -> str:
        value = self.props.get(path)
        return moid(value) if isinstance(value, ManagedObject) else ""

    @property
    def name(self) -> str:
        return self.text("name")


class ObjectCache:
    """Objects by id, with the few cross-object indexes records need."""

    def __init__(self) -> None:
        self._objects: dict[str, ObjectState] = {}

    def __iter__(self) -> Iterator[ObjectState]:
        return iter(list(self._objects.values()))

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, object_id: str) -> ObjectState | None:
        return self._objects.get(object_id)

    def put(self, state: ObjectState) -> None:
        self._objects[state.id] = state

    def pop(self, object_id: str) -> ObjectState | None:
        return self._objects.pop(object_id, None)

    def name(self, object_id: str) -> str:
        state = self._objects.get(object_id)
        return state.name if state else ""

    def ancestors(self, state: ObjectState) -> Iterator[ObjectState]:
        """The object's parents, nearest first, up to (not including) the root folder."""
        seen = {state.id}
        parent = self._objects.get(state.ref_id("parent"))
        while parent is not None and parent.id not in seen:
            seen.add(parent.id)
            yield parent
            parent = self._objects.get(parent.ref_id("parent"))

    def inventory_path(self, state: ObjectState) -> str:
        """``/DC0/vm/Prod/db-01``: names from the datacenter down to the object."""
        names = [state.name, *(parent.name for parent in self.ancestors(state))]
        return "/" + "/".join(reversed(names))

    def datacenter_name(self, state: ObjectState) -> str:
        for parent in self.ancestors(state):
            if isinstance(parent.ref, vim.Datacenter):
                return parent.name
        return ""

    def portgroup_by_key(self) -> dict[str, str]:
        """Distributed portgroup key → its id (keys usually equal ids, but need not)."""
        return {
            state.text("key"): state.id
            for state in self._objects.values()
            if isinstance(state.ref, vim.dvs.DistributedVirtualPortgroup) and state.text("key")
        }

    def opaque_network_by_id(self) -> dict[str, str]:
        """Opaque network id (NSX segment) → the OpaqueNetwork's id."""
        found = {}
        for state in self._objects.values():
            summary = state.get("summary", vim.OpaqueNetwork.Summary)
            if summary is not None:
                found[summary.opaqueNetworkId] = state.id
        return found


def state_from_content(content: vmodl.query.PropertyCollector.ObjectContent) -> ObjectState:
    return ObjectState(ref=content.obj, props={prop.name: prop.val for prop in content.propSet})
