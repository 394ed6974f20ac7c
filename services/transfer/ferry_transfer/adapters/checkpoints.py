"""Disk copy checkpoints in the JetStream KV bucket ``ferry_transfer_checkpoints``.

Per disk copy (migration, VM, disk key) there is one record ``disk.<id>`` (the
:class:`~ferry_transfer.domain.checkpoint.DiskRecord`: counters, two bitmaps and the copy's locations, well under
the 1 MB value limit) and one key per copied range, ``range.<id>.<index>``, holding that
range's 32-byte digest. ``<id>`` is a hash of the three names, so any migration or VM name
makes a valid key. Records change only by compare-and-set on their revision
(:meth:`KvCheckpoints.change`), retried on conflict, so concurrent workers never lose or
double an update.
"""

import asyncio
import random

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ferry_shared.bus.kv_watch import read_matching
from ferry_transfer.domain.checkpoint import Change, DiskRecord
from ferry_transfer.domain.copies import DiskId
from ferry_transfer.domain.errors import CheckpointConflict, CheckpointMissing

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DiskRecord)
WATCH_TIMEOUT = 60.0


class KvCheckpoints:
    """The checkpoint store (the handlers' port) over one KV bucket."""

    def __init__(self, kv: KeyValue, *, attempts: int = 200) -> None:
        self._kv = kv
        self._attempts = attempts

    async def load(self, disk: DiskId) -> DiskRecord | None:
        entry = await self._get(disk)
        return None if entry is None else entry[0]

    async def create(self, disk: DiskId, record: DiskRecord) -> DiskRecord:
        """Store ``record`` unless one exists; return the one that is stored."""
        try:
            await self._kv.create(_record_key(disk), _encoder.encode(record))
        except KeyWrongLastSequenceError:
            stored = await self.load(disk)
            if stored is None:  # deleted in between: try once more
                await self._kv.create(_record_key(disk), _encoder.encode(record))
                return record
            return stored
        return record

    async def change(self, disk: DiskId, change: Change) -> tuple[DiskRecord, DiskRecord | None]:
        """Apply ``change`` to the current record with compare-and-set: ``(record it saw, new record or None)``.

        :class:`CheckpointMissing` if there is no record.
        """
        for attempt in range(self._attempts):
            entry = await self._get(disk)
            if entry is None:
                raise CheckpointMissing(f"the checkpoint of disk {disk.disk_key} of VM {disk.vm_id} is gone")
            current, revision = entry
            updated = change(current)
            if updated is None:
                return current, None
            try:
                await self._kv.update(_record_key(disk), _encoder.encode(updated), last=revision)
            except KeyWrongLastSequenceError:
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
                continue
            return current, updated
        raise CheckpointConflict(f"the checkpoint of disk {disk.disk_key} of VM {disk.vm_id} kept changing")

    async def put_digest(self, disk: DiskId, index: int, digest: bytes) -> None:
        await self._kv.put(f"range.{disk.token}.{index}", digest)

    async def digests(self, disk: DiskId) -> dict[int, bytes]:
        """Every stored range digest of the disk, by range index (one watch, not one request per range)."""
        prefix = f"range.{disk.token}."
        stored = await read_matching(self._kv, f"{prefix}>", within=WATCH_TIMEOUT)
        return {int(key.removeprefix(prefix)): entry.value for key, entry in stored.items()}

    async def _get(self, disk: DiskId) -> tuple[DiskRecord, int] | None:
        try:
            entry = await self._kv.get(_record_key(disk))
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return _decoder.decode(entry.value), entry.revision


def _record_key(disk: DiskId) -> str:
    return f"disk.{disk.token}"
