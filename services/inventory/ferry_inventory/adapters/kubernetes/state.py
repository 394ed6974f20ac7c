"""What the watcher currently knows of a target, and the record changes each observed
change makes. Owned by one watcher session, used from its event loop only.

StorageProfiles are not records of their own: a profile's hints go into the storage
class of the same name, so a profile change re-puts that class's record.
"""

from dataclasses import dataclass, field

from ferry_inventory.adapters.kubernetes.objects import (
    KubeObject,
    StorageClassObject,
    StorageProfileObject,
    VirtualMachineObject,
    nad_record,
    namespace_record,
    storage_class_record,
    target_vm_record,
)
from ferry_inventory.adapters.kubernetes.resources import RECORD_KINDS
from ferry_inventory.domain.ports import KindAndId, KindAndRecord
from ferry_shared.inventory import Record

DELETED = "DELETED"


@dataclass
class Changes:
    """Record changes of a batch of events, the last word per record winning."""

    latest: dict[KindAndId, Record | None] = field(default_factory=dict)

    def put(self, kind: str, record: Record) -> None:
        self.latest[(kind, record.id)] = record

    def delete(self, kind: str, identifier: str) -> None:
        self.latest[(kind, identifier)] = None

    @property
    def puts(self) -> list[KindAndRecord]:
        return [(kind, record) for (kind, _), record in self.latest.items() if record is not None]

    @property
    def deletes(self) -> list[KindAndId]:
        return [key for key, record in self.latest.items() if record is None]

    def __bool__(self) -> bool:
        return bool(self.latest)


class TargetState:
    """The objects of every watched resource, by resource key and object id."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[str, KubeObject]] = {}

    def replace(self, key: str, objects: list[KubeObject]) -> None:
        """All objects of one resource, after a (re-)list."""
        self._objects[key] = {obj.metadata.id: obj for obj in objects}

    def observe(self, key: str, event: str, obj: KubeObject, changes: Changes) -> None:
        """One watch event (``ADDED``, ``MODIFIED`` or ``DELETED``); adds its record changes."""
        objects = self._objects.setdefault(key, {})
        identifier = obj.metadata.id
        if event == DELETED:
            objects.pop(identifier, None)
        else:
            objects[identifier] = obj
        if key == "storageprofile":
            self._reput_class(identifier, changes)
            return
        record = None if event == DELETED else self._record(key, obj)
        if record is None:
            changes.delete(key, identifier)
        else:
            changes.put(key, record)

    def _reput_class(self, name: str, changes: Changes) -> None:
        storage_class = self._objects.get("storageclass", {}).get(name)
        if storage_class is not None and (record := self._record("storageclass", storage_class)) is not None:
            changes.put("storageclass", record)

    def records(self) -> list[KindAndRecord]:
        """Every record, for ``replace_all``."""
        found: list[KindAndRecord] = []
        for kind in RECORD_KINDS:
            for obj in self._objects.get(kind, {}).values():
                if (record := self._record(kind, obj)) is not None:
                    found.append((kind, record))
        return found

    def counts(self) -> dict[str, int]:
        return {kind: len(self._objects[kind]) for kind in RECORD_KINDS if kind in self._objects}

    def _record(self, kind: str, obj: KubeObject) -> Record | None:
        if kind == "namespace":
            return namespace_record(obj)
        if kind == "nad":
            return nad_record(obj)
        if kind == "storageclass" and isinstance(obj, StorageClassObject):
            profile = self._objects.get("storageprofile", {}).get(obj.metadata.id)
            return storage_class_record(obj, profile if isinstance(profile, StorageProfileObject) else None)
        if kind == "targetvm" and isinstance(obj, VirtualMachineObject):
            return target_vm_record(obj)
        return None
