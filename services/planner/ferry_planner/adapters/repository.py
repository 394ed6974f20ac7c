"""The planner's own state in its KV bucket: providers, maps and plans, one key each."""

from typing import TypeVar

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.plans import Plan
from ferry_planner.domain.providers import ProviderRecord
from ferry_shared.bus.kv_watch import read_all

T = TypeVar("T", ProviderRecord, NetworkMap, StorageMap, Plan)

PREFIXES: dict[type[msgspec.Struct], str] = {
    ProviderRecord: "provider",
    NetworkMap: "networkmap",
    StorageMap: "storagemap",
    Plan: "plan",
}


class PlannerRepository:
    """Typed get/put/delete/list over ``<kind>.<name>`` keys."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @staticmethod
    def _key(kind: type[msgspec.Struct], name: str) -> str:
        return f"{PREFIXES[kind]}.{name}"

    async def get(self, kind: type[T], name: str) -> T | None:
        try:
            entry = await self._kv.get(self._key(kind, name))
        except KeyNotFoundError:
            return None
        return msgspec.json.decode(entry.value, type=kind) if entry.value else None

    async def put(self, kind: type[T], name: str, value: T) -> None:
        await self._kv.put(self._key(kind, name), msgspec.json.encode(value))

    async def create(self, kind: type[T], name: str, value: T) -> bool:
        """Store ``value`` only if ``name`` is free; False when it already exists."""
        try:
            await self._kv.create(self._key(kind, name), msgspec.json.encode(value))
        except KeyWrongLastSequenceError:
            return False
        return True

    async def delete(self, kind: type[T], name: str) -> None:
        await self._kv.delete(self._key(kind, name))

    async def list(self, kind: type[T]) -> list[T]:
        prefix = f"{PREFIXES[kind]}."
        values = await read_all(self._kv)
        return [msgspec.json.decode(v, type=kind) for k, v in sorted(values.items()) if k.startswith(prefix)]
