"""Writes one provider's inventory and status to the KV bucket, keeps the in-memory
index in step, and publishes ``InventoryChanged`` / ``ProviderStatusChanged``.

Implements the :class:`InventorySink` and :class:`StatusReporter` ports for the
watcher of one provider. Only records that really changed are written.

Each event's ``message_id`` is derived from what it announces: the provider, the
watcher's generation, the bucket's revision once the change is stored (the status
key's, or the newest record written; the bucket's last revision when only deletions
or nothing were written) and a digest of the status, or of the keys put and deleted. A retried publish is therefore
deduplicated, and two changes never share an id: every write raises the revision.

Every store of the service shares one ``health``: a failed write to the bucket makes it
not ready (the service cannot keep the inventory), the next write that works ready again.
"""

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import TypeVar

import msgspec
from nats.js.kv import KeyValue

from ferry_inventory.domain.index import InventoryIndex
from ferry_inventory.domain.ports import EventPublisher, KindAndId, KindAndRecord
from ferry_shared.ids import digest, message_id
from ferry_shared.inventory import inventory_key, status_key
from ferry_shared.providers import InventoryChanged, ProviderStatus, ProviderStatusChanged
from ferry_shared.readiness import Health

WRITE_CONCURRENCY = 64
MAX_KEYS_PER_EVENT = 500

T = TypeVar("T")


async def _bounded(jobs: Iterable[Awaitable[object]]) -> list[object]:
    """The jobs' results, at most :data:`WRITE_CONCURRENCY` of them running at once."""
    semaphore = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def run(job: Awaitable[object]) -> object:
        async with semaphore:
            return await job

    return await asyncio.gather(*(run(job) for job in jobs))


class ProviderInventoryStore:
    """The sink and status reporter of one provider's watcher."""

    def __init__(
        self,
        provider: str,
        kv: KeyValue,
        publisher: EventPublisher,
        index: InventoryIndex,
        *,
        generation: int = 0,
        health: Health | None = None,
    ) -> None:
        self._provider = provider
        self._health = health or Health()
        self._generation = generation
        self._kv = kv
        self._publisher = publisher
        self._index = index

    async def replace_all(self, records: Sequence[KindAndRecord]) -> None:
        old = self._index.keys(self._provider)
        changed = [(kind, record) for kind, record in records if self._differs(kind, record)]
        gone = old - {(kind, record.id) for kind, record in records}
        revision = await self._write(changed, gone)
        self._index.replace_all(self._provider, records)
        await self._announce(changed, gone, revision, reloaded=True)

    async def apply(self, put: Sequence[KindAndRecord], deleted: Sequence[KindAndId]) -> None:
        changed = [(kind, record) for kind, record in put if self._differs(kind, record)]
        revision = await self._write(changed, set(deleted))
        self._index.apply(self._provider, changed, deleted)
        await self._announce(changed, set(deleted), revision, reloaded=False)

    async def report(self, status: ProviderStatus) -> None:
        status = msgspec.structs.replace(status, generation=self._generation)
        self._index.set_status(self._provider, status)
        encoded = msgspec.json.encode(status)
        revision = await self._stored(self._kv.put(status_key(self._provider), encoded))
        await self._publisher.publish(
            ProviderStatusChanged(
                message_id=self._id("status", revision, digest(encoded)), provider_name=self._provider, status=status
            )
        )

    def _id(self, what: str, revision: int, content: str) -> str:
        return message_id(what, self._provider, str(self._generation), str(revision), content)

    def _differs(self, kind: str, record: msgspec.Struct) -> bool:
        return self._index.get(self._provider, kind, getattr(record, "id", "")) != record

    async def _write(self, put: Sequence[KindAndRecord], deleted: Iterable[KindAndId]) -> int:
        """Store the batch; the newest revision among the records put (0 when none was)."""
        writes = [
            self._kv.put(inventory_key(self._provider, kind, record.id), msgspec.json.encode(record))
            for kind, record in put
        ]
        deletes = [self._kv.delete(inventory_key(self._provider, kind, rid)) for kind, rid in deleted]
        revisions = (await self._stored(_bounded([*writes, *deletes])))[: len(writes)]
        return max((revision for revision in revisions if isinstance(revision, int)), default=0)

    async def _stored(self, writes: Awaitable[T]) -> T:
        """Await writes to the bucket, telling ``health`` whether they worked."""
        try:
            result = await writes
        except Exception as error:
            self._health.not_ready(f"writing to the inventory bucket fails: {type(error).__name__}: {error}")
            raise
        self._health.ready()
        return result

    async def _announce(
        self, put: Sequence[KindAndRecord], deleted: set[KindAndId], revision: int, *, reloaded: bool
    ) -> None:
        if not put and not deleted and not reloaded:
            return
        put_keys = tuple(inventory_key(self._provider, kind, record.id) for kind, record in put)
        deleted_keys = tuple(inventory_key(self._provider, kind, rid) for kind, rid in sorted(deleted))
        too_many = len(put_keys) + len(deleted_keys) > MAX_KEYS_PER_EVENT
        revision = revision or (await self._kv.status()).stream_info.state.last_seq
        change = digest(
            *(key.encode() for key in put_keys), b"", *(key.encode() for key in deleted_keys), b"%d" % reloaded
        )
        await self._publisher.publish(
            InventoryChanged(
                message_id=self._id("inventory", revision, change),
                provider_name=self._provider,
                put=() if too_many else put_keys,
                deleted=() if too_many else deleted_keys,
                reloaded=reloaded or too_many,
            )
        )

    async def forget(self) -> None:
        """Delete every record and the status of this provider."""
        await self._write([], self._index.keys(self._provider))
        await self._stored(self._kv.delete(status_key(self._provider)))
        self._index.forget(self._provider)
