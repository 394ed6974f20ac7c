"""Migrations in the planner's bucket, with an in-memory copy.

A migration is stored as one key for the migration itself (``migration.<name>``: plan,
providers, times, the order of its VMs) and one key per VM
(``migration.<name>.vm.<vm id>``), so a value stays small however many VMs a plan has
and a VM's change rewrites only that VM.

Every migration is loaded at start-up; reads come from memory. Writes go to the bucket
with the revision last seen for each key, so a write that raced another writer fails
instead of overwriting it (the copy is then re-read and the caller retries). A change
may be *staged* (kept in memory, stored by a later :meth:`flush`) when losing it is
harmless, as with disk progress that the next progress event repeats.
"""

import logging
from typing import Any, TypeVar

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from ferry_planner.domain.migrations import Migration, MigrationHeader, VmMigration
from ferry_shared.errors import TemporaryError
from ferry_shared.inventory import kv_safe

log = logging.getLogger(__name__)

PREFIX = "migration"
S = TypeVar("S", bound=msgspec.Struct)


class MigrationRecord(MigrationHeader, frozen=True, kw_only=True):
    """What ``migration.<name>`` holds: the migration without its VMs, and their order."""

    vm_ids: tuple[str, ...]


def migration_key(name: str) -> str:
    return f"{PREFIX}.{name}"


def vm_key(name: str, vm_id: str) -> str:
    return f"{PREFIX}.{name}.vm.{kv_safe(vm_id)}"


def _header(migration: MigrationHeader) -> dict[str, Any]:
    """The fields every kind of :class:`MigrationHeader` shares, by name."""
    return {name: getattr(migration, name) for name in MigrationHeader.__struct_fields__}


def _record(migration: Migration) -> MigrationRecord:
    return MigrationRecord(**_header(migration), vm_ids=tuple(vm.vm_id for vm in migration.vms))


def _parts(migration: Migration) -> dict[str, msgspec.Struct]:
    """Every key of ``migration`` and the value it holds."""
    parts: dict[str, msgspec.Struct] = {migration_key(migration.name): _record(migration)}
    parts.update({vm_key(migration.name, vm.vm_id): vm for vm in migration.vms})
    return parts


_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(MigrationRecord)
_vm_decoder = msgspec.json.Decoder(VmMigration)


class MigrationStore:
    """Typed, revision-checked storage of migrations with a write-back copy in memory."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._migrations: dict[str, Migration] = {}
        self._written: dict[str, msgspec.Struct] = {}  # key → the value last stored (or loaded)
        self._revisions: dict[str, int] = {}
        self._staged: set[str] = set()

    async def load(self) -> None:
        """Read every stored migration (once, at start-up)."""
        records: dict[str, MigrationRecord] = {}
        vms: dict[str, VmMigration] = {}
        watcher = await self._kv.watch(f"{PREFIX}.>", ignore_deletes=True)
        try:
            while (entry := await watcher.updates(timeout=60.0)) is not None:  # type: ignore[no-untyped-call]
                if entry.value is None or entry.operation in (KV_DEL, KV_PURGE):
                    continue
                try:
                    value: msgspec.Struct
                    if ".vm." in entry.key:
                        value = vms[entry.key] = _vm_decoder.decode(entry.value)
                    else:
                        value = records[entry.key] = _record_decoder.decode(entry.value)
                except msgspec.DecodeError as error:
                    log.error("ignoring unreadable migration key %s: %s", entry.key, error)
                    continue
                self._written[entry.key] = value
                self._revisions[entry.key] = entry.revision
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        for record in records.values():
            keys = [vm_key(record.name, vm_id) for vm_id in record.vm_ids]
            missing = [key for key in keys if key not in vms]
            if missing:
                log.error("migration %s is incomplete in the bucket (missing %s); ignoring it", record.name, missing)
                continue
            self._migrations[record.name] = _assemble(record, tuple(vms[key] for key in keys))
        log.info("loaded %d migrations", len(self._migrations))

    def get(self, name: str) -> Migration | None:
        return self._migrations.get(name)

    def all(self) -> list[Migration]:
        return list(self._migrations.values())

    async def create(self, migration: Migration) -> bool:
        """Store a new migration; False when the name is taken."""
        record_key = migration_key(migration.name)
        record = _record(migration)
        try:
            self._revisions[record_key] = await self._kv.create(record_key, _encoder.encode(record))
        except KeyWrongLastSequenceError:
            return False
        self._written[record_key] = record
        self._migrations[migration.name] = migration
        self._staged.add(migration.name)
        await self.flush(migration.name)
        return True

    def stage(self, migration: Migration) -> None:
        """Keep a change in memory only, until :meth:`flush` or the next :meth:`save`."""
        self._migrations[migration.name] = migration
        self._staged.add(migration.name)

    async def save(self, migration: Migration) -> None:
        """Store ``migration`` (and anything staged for it)."""
        self.stage(migration)
        await self.flush(migration.name)

    async def flush(self, name: str) -> None:
        """Write the keys of ``name`` that changed since they were last stored."""
        if name not in self._staged:
            return
        for key, value in _parts(self._migrations[name]).items():
            stored = self._written.get(key)
            if stored is value or stored == value:
                continue
            try:
                self._revisions[key] = await self._kv.update(key, _encoder.encode(value), last=self._revisions.get(key))
            except KeyWrongLastSequenceError as error:
                await self._reload(name)
                raise TemporaryError(
                    "migration_changed_elsewhere",
                    f"migration '{name}' was changed by another writer meanwhile; it was read again, so the "
                    "change can be retried",
                    delay=0.5,
                ) from error
            self._written[key] = value
        self._staged.discard(name)

    async def _reload(self, name: str) -> None:
        """Replace the copy of ``name`` with what the bucket holds."""
        self._staged.discard(name)
        record = await self._read(migration_key(name), _record_decoder)
        if record is None:
            self._migrations.pop(name, None)
            return
        vms = [await self._read(vm_key(name, vm_id), _vm_decoder) for vm_id in record.vm_ids]
        self._migrations[name] = _assemble(record, tuple(vm for vm in vms if vm is not None))

    async def _read(self, key: str, decoder: msgspec.json.Decoder[S]) -> S | None:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        value = decoder.decode(entry.value)
        self._written[key] = value
        self._revisions[key] = entry.revision or 0
        return value


def _assemble(record: MigrationRecord, vms: tuple[VmMigration, ...]) -> Migration:
    return Migration(**_header(record), vms=vms)
