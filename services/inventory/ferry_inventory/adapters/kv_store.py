"""Writes one provider's inventory and status to the KV bucket, keeps the in-memory
index in step, and publishes ``InventoryChanged`` / ``ProviderStatusChanged``.

Implements the :class:`InventorySink` and :class:`StatusReporter` ports for the
watcher of one provider. Only records that really changed are written.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Iterable, Sequence

import msgspec
from nats.js.kv import KeyValue

from ferry_inventory.domain.index import InventoryIndex
from ferry_inventory.domain.ports import KindAndId, KindAndRecord
from ferry_shared.bus.publisher import Publisher
from ferry_shared.inventory import inventory_key, status_key
from ferry_shared.providers import InventoryChanged, ProviderStatus, ProviderStatusChanged

WRITE_CONCURRENCY = 64
MAX_KEYS_PER_EVENT = 500


async def _bounded(jobs: Iterable[Awaitable[object]]) -> None:
    semaphore = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def run(job: Awaitable[object]) -> None:
        async with semaphore:
            await job

    await asyncio.gather(*(run(job) for job in jobs))


class ProviderInventoryStore:
    """The sink and status reporter of one provider's watcher."""

    def __init__(
        self, provider: str, kv: KeyValue, publisher: Publisher, index: InventoryIndex, *, generation: int = 0
    ) -> None:
        self._provider = provider
        self._generation = generation
        self._kv = kv
        self._publisher = publisher
        self._index = index

    async def replace_all(self, records: Sequence[KindAndRecord]) -> None:
        old = self._index.keys(self._provider)
        changed = [(kind, record) for kind, record in records if self._differs(kind, record)]
        gone = old - {(kind, record.id) for kind, record in records}
        await self._write(changed, gone)
        self._index.replace_all(self._provider, records)
        await self._announce(changed, gone, reloaded=True)

    async def apply(self, put: Sequence[KindAndRecord], deleted: Sequence[KindAndId]) -> None:
        changed = [(kind, record) for kind, record in put if self._differs(kind, record)]
        await self._write(changed, set(deleted))
        self._index.apply(self._provider, changed, deleted)
        await self._announce(changed, set(deleted), reloaded=False)

    async def report(self, status: ProviderStatus) -> None:
        status = msgspec.structs.replace(status, generation=self._generation)
        self._index.set_status(self._provider, status)
        await self._kv.put(status_key(self._provider), msgspec.json.encode(status))
        await self._publisher.publish(
            ProviderStatusChanged(message_id=str(uuid.uuid4()), provider_name=self._provider, status=status)
        )

    def _differs(self, kind: str, record: msgspec.Struct) -> bool:
        return self._index.get(self._provider, kind, getattr(record, "id", "")) != record

    async def _write(self, put: Sequence[KindAndRecord], deleted: Iterable[KindAndId]) -> None:
        writes = [
            self._kv.put(inventory_key(self._provider, kind, record.id), msgspec.json.encode(record))
            for kind, record in put
        ]
        deletes = [self._kv.delete(inventory_key(self._provider, kind, rid)) for kind, rid in deleted]
        await _bounded([*writes, *deletes])

    async def _announce(self, put: Sequence[KindAndRecord], deleted: set[KindAndId], *, reloaded: bool) -> None:
        if not put and not deleted and not reloaded:
            return
        put_keys = tuple(inventory_key(self._provider, kind, record.id) for kind, record in put)
        deleted_keys = tuple(inventory_key(self._provider, kind, rid) for kind, rid in sorted(deleted))
        too_many = len(put_keys) + len(deleted_keys) > MAX_KEYS_PER_EVENT
        await self._publisher.publish(
            InventoryChanged(
                message_id=str(uuid.uuid4()),
                provider_name=self._provider,
                put=() if too_many else put_keys,
                deleted=() if too_many else deleted_keys,
                reloaded=reloaded or too_many,
            )
        )

    async def forget(self) -> None:
        """Delete every record and the status of this provider."""
        await self._write([], self._index.keys(self._provider))
        await self._kv.delete(status_key(self._provider))
        self._index.forget(self._provider)
