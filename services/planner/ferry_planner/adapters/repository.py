"""The planner's own state in its KV bucket: providers, maps and plans, one key each
(migrations: :mod:`migration_store`). Implements the ``Resources`` port.

A stored value that no longer decodes (written by hand, or by a version with other
rules) is logged with its key and read as absent, so one bad record cannot make every
listing fail; it can still be deleted. A listing decodes only the records whose revision
it has not decoded before. Given a :class:`~ferry_planner.adapters.bucket_copy.BucketCopy`,
listings read it while it is current (else the bucket), and every write is applied to it
once stored, so this replica lists its own writes at once.
"""

import logging
from collections.abc import Mapping
from typing import TypeVar

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ferry_planner.adapters.bucket_copy import BucketCopy
from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.plans import Plan
from ferry_planner.domain.providers import ProviderRecord
from ferry_shared.bus.kv_watch import Stored, read_matching

log = logging.getLogger(__name__)

T = TypeVar("T", ProviderRecord, NetworkMap, StorageMap, Plan)

PREFIXES: dict[type[msgspec.Struct], str] = {
    ProviderRecord: "provider",
    NetworkMap: "networkmap",
    StorageMap: "storagemap",
    Plan: "plan",
}


class PlannerRepository:
    """Typed get/put/delete/list over ``<kind>.<name>`` keys."""

    def __init__(self, kv: KeyValue, copy: BucketCopy | None = None) -> None:
        self._kv = kv
        self._copy = copy
        self._listed: dict[str, tuple[int, msgspec.Struct | None]] = {}

    @staticmethod
    def _key(kind: type[msgspec.Struct], name: str) -> str:
        return f"{PREFIXES[kind]}.{name}"

    async def get(self, kind: type[T], name: str) -> T | None:
        try:
            entry = await self._kv.get(self._key(kind, name))
        except KeyNotFoundError:
            return None
        return _decoded(entry.key, entry.value, kind) if entry.value else None

    async def revision(self, kind: type[T], name: str) -> int:
        try:
            entry = await self._kv.get(self._key(kind, name))
        except KeyNotFoundError:
            return 0
        return entry.revision or 0

    async def create(self, kind: type[T], name: str, value: T) -> int | None:
        """Store ``value`` only if ``name`` is free: its revision, or None when it already exists."""
        key, encoded = self._key(kind, name), msgspec.json.encode(value)
        try:
            revision = int(await self._kv.create(key, encoded))
        except KeyWrongLastSequenceError:
            return None
        self._stored(key, revision, encoded)
        return revision

    async def replace(self, kind: type[T], name: str, value: T, *, revision: int) -> int | None:
        """Store ``value`` only if the record is still at ``revision``: its new revision, or None."""
        key, encoded = self._key(kind, name), msgspec.json.encode(value)
        try:
            new_revision = int(await self._kv.update(key, encoded, last=revision))
        except KeyWrongLastSequenceError:
            return None
        self._stored(key, new_revision, encoded)
        return new_revision

    async def delete(self, kind: type[T], name: str) -> None:
        key = self._key(kind, name)
        await self._kv.delete(key)
        if self._copy is not None:
            self._copy.deleted(key)

    def _stored(self, key: str, revision: int, value: bytes) -> None:
        if self._copy is not None:
            self._copy.apply(key, revision, value)

    async def _matching(self, kind: type[T]) -> Mapping[str, Stored]:
        if self._copy is not None and self._copy.is_current():
            return self._copy.under(PREFIXES[kind])
        return await read_matching(self._kv, f"{PREFIXES[kind]}.>")

    async def list(self, kind: type[T]) -> list[T]:
        prefix = f"{PREFIXES[kind]}."
        stored = await self._matching(kind)
        for key in [key for key in self._listed if key.startswith(prefix) and key not in stored]:
            del self._listed[key]
        listed: list[T] = []
        for key, entry in sorted(stored.items()):
            kept = self._listed.get(key)
            if kept is None or kept[0] != entry.revision:
                kept = self._listed[key] = (entry.revision, _decoded(key, entry.value, kind))
            if isinstance(kept[1], kind):
                listed.append(kept[1])
        return listed


def _decoded(key: str, value: bytes, kind: type[T]) -> T | None:
    try:
        return msgspec.json.decode(value, type=kind)
    except msgspec.DecodeError:  # ValidationError too
        log.exception("skipping %s: the stored value does not decode as a %s", key, kind.__name__)
        return None
