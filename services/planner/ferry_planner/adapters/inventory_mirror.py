"""A live, read-only mirror of the inventory bucket (owned by the inventory service),
followed through its KV watch feed: the planner validates against it. Its ``health``
is not ready until the bucket is first read, and while the watch is broken.

Each provider has a version, counted up by every record or status applied for it; a
provider's views are built once per version (every plan of a provider reads the same)."""

import asyncio
import logging
from collections.abc import Callable

import msgspec
from nats.js.kv import KeyValue

from ferry_planner.domain.inventory_view import SourceView, TargetView
from ferry_shared.bus.kv_watch import follow
from ferry_shared.inventory import (
    RECORD_TYPES,
    STATUS_PREFIX,
    DatastoreRecord,
    HostRecord,
    NadRecord,
    NamespaceRecord,
    NetworkRecord,
    Record,
    StorageClassRecord,
    TargetVmRecord,
    VmRecord,
    parse_inventory_key,
)
from ferry_shared.providers import ProviderStatus
from ferry_shared.readiness import Health

log = logging.getLogger(__name__)


class InventoryMirror:
    """Records and statuses per provider; calls each listener with the provider after changes."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._records: dict[str, dict[str, dict[str, Record]]] = {}
        self._statuses: dict[str, ProviderStatus] = {}
        self._versions: dict[str, int] = {}
        self._source_views: dict[str, tuple[int, SourceView]] = {}
        self._target_views: dict[tuple[str, bool], tuple[int, TargetView]] = {}
        self.loaded = asyncio.Event()
        self.listeners: list[Callable[[str], None]] = []
        self.health = Health(not_ready="the inventory is not loaded yet")

    def status(self, provider: str) -> ProviderStatus | None:
        return self._statuses.get(provider)

    def version(self, provider: str) -> int:
        return self._versions.get(provider, 0)

    def _of(self, provider: str, kind: str) -> list[Record]:
        return list(self._records.get(provider, {}).get(kind, {}).values())

    def source_view(self, provider: str) -> SourceView:
        version = self.version(provider)
        kept = self._source_views.get(provider)
        if kept is None or kept[0] != version:
            kept = self._source_views[provider] = (version, self._new_source_view(provider))
        return kept[1]

    def target_view(self, provider: str, *, checked: bool) -> TargetView:
        version = self.version(provider)
        kept = self._target_views.get((provider, checked))
        if kept is None or kept[0] != version:
            kept = self._target_views[(provider, checked)] = (version, self._new_target_view(provider, checked))
        return kept[1]

    def _new_source_view(self, provider: str) -> SourceView:
        return SourceView(
            vms=[r for r in self._of(provider, "vm") if isinstance(r, VmRecord)],
            networks=[r for r in self._of(provider, "network") if isinstance(r, NetworkRecord)],
            datastores=[r for r in self._of(provider, "datastore") if isinstance(r, DatastoreRecord)],
            hosts=[r for r in self._of(provider, "host") if isinstance(r, HostRecord)],
        )

    def _new_target_view(self, provider: str, checked: bool) -> TargetView:
        return TargetView(
            checked=checked,
            namespaces=[r for r in self._of(provider, "namespace") if isinstance(r, NamespaceRecord)],
            storage_classes=[r for r in self._of(provider, "storageclass") if isinstance(r, StorageClassRecord)],
            nads=[r for r in self._of(provider, "nad") if isinstance(r, NadRecord)],
            vms=[r for r in self._of(provider, "targetvm") if isinstance(r, TargetVmRecord)],
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the bucket until ``stop``."""
        await follow(self._kv, self._apply, stop, initial_done=self.loaded, health=self.health)

    async def _apply(self, key: str, value: bytes | None) -> None:
        provider = self._apply_entry(key, value)
        if provider is not None and self.loaded.is_set():
            for listener in self.listeners:
                listener(provider)

    def _apply_entry(self, key: str, value: bytes | None) -> str | None:
        provider = self._apply_record(key, value)
        if provider is not None:
            self._versions[provider] = self.version(provider) + 1
        return provider

    def _apply_record(self, key: str, value: bytes | None) -> str | None:
        if key.startswith(f"{STATUS_PREFIX}."):
            provider = key.split(".", 1)[1]
            if value is None:
                self._statuses.pop(provider, None)
            else:
                self._statuses[provider] = msgspec.json.decode(value, type=ProviderStatus)
            return provider
        parsed = parse_inventory_key(key)
        if parsed is None:
            return None
        provider, kind, identifier = parsed
        records = self._records.setdefault(provider, {}).setdefault(kind, {})
        if value is None:
            records.pop(identifier, None)
        else:
            try:
                records[identifier] = msgspec.json.decode(value, type=RECORD_TYPES[kind])
            except msgspec.DecodeError as error:
                log.warning("ignoring unreadable inventory record %s: %s", key, error)
        return provider
