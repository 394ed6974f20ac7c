"""Migrations in the planner's bucket, each VM stored with its outbox, and a copy in memory.

A migration is one key for the migration itself (``migration.<name>``: plan, providers,
times, the order of its VMs, and the outbox of its own messages) and one key per VM
(``migration.<name>.vm.<vm id>``: the VM's state *and* the messages its last change
must send), so a value stays small however many VMs a plan has, and a VM's state and
its messages are written together in one KV write: the unit of work of
:mod:`ferry_planner.domain.outbox`.

Every migration is loaded at start-up; reads come from memory. Writes carry the
revision last seen for each key, so a write that raced another writer fails instead of
overwriting it (the copy is then re-read, and ``TemporaryError`` tells the caller to
retry). A progress-only change may be *staged* (kept in memory, stored by
:meth:`flush`): losing it is harmless, the next progress event repeats it.
"""

import logging
from typing import Any, TypeVar

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ferry_planner.domain.migrations import Migration, MigrationHeader, VmMigration
from ferry_planner.domain.outbox import MIGRATION_ITSELF, Commit, Outbox, OutboxMessage
from ferry_planner.domain.ports import StoredChange
from ferry_shared.bus.kv_watch import read_matching
from ferry_shared.errors import TemporaryError
from ferry_shared.inventory import kv_safe
from ferry_shared.messages import Message

log = logging.getLogger(__name__)

PREFIX = "migration"
S = TypeVar("S", bound=msgspec.Struct)


class MigrationRecord(MigrationHeader, frozen=True, kw_only=True):
    """What ``migration.<name>`` holds: the migration without its VMs, their order, and
    the migration's own unsent messages."""

    vm_ids: tuple[str, ...]
    outbox: tuple[OutboxMessage, ...] = ()


class VmRecord(VmMigration, frozen=True, kw_only=True):
    """What ``migration.<name>.vm.<id>`` holds: the VM and its unsent messages.

    ``power_state_at_start`` and ``original_power_state`` are read only, from records
    written before the VM had one power-state field."""

    outbox: tuple[OutboxMessage, ...] = ()
    power_state_at_start: str = ""
    original_power_state: str = ""


def migration_key(name: str) -> str:
    return f"{PREFIX}.{name}"


def vm_key(name: str, vm_id: str) -> str:
    return f"{PREFIX}.{name}.vm.{kv_safe(vm_id)}"


def _fields(value: msgspec.Struct, of: type[msgspec.Struct]) -> dict[str, Any]:
    return {name: getattr(value, name) for name in of.__struct_fields__}


def _vm_of(record: VmRecord) -> VmMigration:
    vm = VmMigration(**_fields(record, VmMigration))
    if record.original_power_state or record.power_state_at_start:  # written by an earlier version
        return msgspec.structs.replace(
            vm,
            source_power_state=record.original_power_state or record.power_state_at_start,
            source_power_recorded=bool(record.original_power_state),
        )
    return vm


_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(MigrationRecord)
_vm_decoder = msgspec.json.Decoder(VmRecord)
Box = tuple[str, str]  # (migration, vm id or MIGRATION_ITSELF)


class MigrationStore:
    """Typed, revision-checked storage of migrations and their outboxes, with a write-back copy in memory."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._migrations: dict[str, Migration] = {}
        self._outboxes: dict[Box, Outbox] = {}
        self._written: dict[str, msgspec.Struct] = {}  # key → the value last stored (or loaded)
        self._revisions: dict[str, int] = {}
        self._staged: set[str] = set()

    # --- reads ---------------------------------------------------------------------
    def get(self, name: str) -> Migration | None:
        return self._migrations.get(name)

    def all(self) -> list[Migration]:
        return list(self._migrations.values())

    def staged(self) -> list[str]:
        return sorted(self._staged)

    def unsent(self) -> list[Outbox]:
        return [box for _, box in sorted(self._outboxes.items())]

    # --- writes --------------------------------------------------------------------
    async def create(self, migration: Migration, outbox: Outbox) -> bool:
        record_key = migration_key(migration.name)
        self._set_outbox(outbox)
        record = self._record(migration)
        try:
            self._revisions[record_key] = await self._kv.create(record_key, _encoder.encode(record))
        except KeyWrongLastSequenceError:
            self._outboxes.pop((outbox.migration, outbox.vm_id), None)
            return False
        self._written[record_key] = record
        self._migrations[migration.name] = migration
        self._staged.add(migration.name)
        await self.flush(migration.name)
        return True

    async def store(self, commit: Commit) -> None:
        self._migrations[commit.after.name] = commit.after
        for box in commit.outboxes:
            self._set_outbox(box)
        self._staged.add(commit.after.name)
        await self.flush(commit.after.name)

    def stage(self, migration: Migration) -> None:
        self._migrations[migration.name] = migration
        self._staged.add(migration.name)

    async def flush(self, name: str) -> None:
        if name not in self._staged:
            return
        for key, value in self._parts(self._migrations[name]).items():
            await self._write(name, key, value)
        self._staged.discard(name)

    async def sent(self, name: str, outbox: Outbox) -> None:
        box = (name, outbox.vm_id)
        if self._outboxes.get(box) != outbox:
            return  # a newer change replaced it (and will be sent in turn)
        del self._outboxes[box]
        migration = self._migrations[name]
        if outbox.vm_id == MIGRATION_ITSELF:
            await self._write(name, migration_key(name), self._record(migration))
        elif (vm := migration.vm(outbox.vm_id)) is not None:
            await self._write(name, vm_key(name, vm.vm_id), self._vm_record(name, vm))

    # --- inside --------------------------------------------------------------------
    def _set_outbox(self, outbox: Outbox) -> None:
        box = (outbox.migration, outbox.vm_id)
        if outbox.messages:
            self._outboxes[box] = outbox
        else:
            self._outboxes.pop(box, None)

    def _messages(self, name: str, vm_id: str) -> tuple[Message, ...]:
        box = self._outboxes.get((name, vm_id))
        return box.messages if box else ()

    def _record(self, migration: Migration) -> MigrationRecord:
        return MigrationRecord(
            **_fields(migration, MigrationHeader),
            vm_ids=tuple(vm.vm_id for vm in migration.vms),
            outbox=self._messages(migration.name, MIGRATION_ITSELF),  # type: ignore[arg-type]
        )

    def _vm_record(self, name: str, vm: VmMigration) -> VmRecord:
        return VmRecord(**_fields(vm, VmMigration), outbox=self._messages(name, vm.vm_id))  # type: ignore[arg-type]

    def _parts(self, migration: Migration) -> dict[str, msgspec.Struct]:
        """Every key of ``migration`` and the value it should hold."""
        parts: dict[str, msgspec.Struct] = {migration_key(migration.name): self._record(migration)}
        parts.update({vm_key(migration.name, vm.vm_id): self._vm_record(migration.name, vm) for vm in migration.vms})
        return parts

    async def _write(self, name: str, key: str, value: msgspec.Struct) -> None:
        stored = self._written.get(key)
        if stored is value or stored == value:
            return
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

    # --- changes made by another replica ---------------------------------------------
    def adopt(self, key: str, revision: int, value: bytes) -> StoredChange | None:
        """Take a key another replica wrote (seen on the bucket's watch) into the copy in
        memory; None when it is one this copy already has (its own writes come back too)
        or part of a migration not yet whole. Call with the migration's lock held."""
        if revision <= self._revisions.get(key, 0):
            return None
        try:
            decoded: msgspec.Struct = _vm_decoder.decode(value) if ".vm." in key else _record_decoder.decode(value)
        except msgspec.DecodeError as error:
            log.error("ignoring unreadable migration key %s: %s", key, error)
            return None
        self._written[key], self._revisions[key] = decoded, revision
        if isinstance(decoded, VmRecord):
            name = key.split(".vm.", 1)[0].removeprefix(f"{PREFIX}.")
            migration = self._migrations.get(name)
            if migration is None:
                return self._assemble_new(name)
            self._set_outbox(Outbox(migration=name, vm_id=decoded.vm_id, messages=decoded.outbox))
            self._migrations[name] = migration.with_vm(_vm_of(decoded))
            self._staged.discard(name)
            return StoredChange(migration=name, vm_id=decoded.vm_id)
        assert isinstance(decoded, MigrationRecord)
        current = self._migrations.get(decoded.name)
        if current is None:
            return self._assemble_new(decoded.name)
        self._set_outbox(Outbox(migration=decoded.name, vm_id=MIGRATION_ITSELF, messages=decoded.outbox))
        self._migrations[decoded.name] = Migration(**_fields(decoded, MigrationHeader), vms=current.vms)
        return StoredChange(migration=decoded.name, vm_id=MIGRATION_ITSELF)

    def _assemble_new(self, name: str) -> StoredChange | None:
        """A migration another replica created, once its record and every VM key were seen."""
        record = self._written.get(migration_key(name))
        if not isinstance(record, MigrationRecord):
            return None
        vms = [self._written.get(vm_key(name, vm_id)) for vm_id in record.vm_ids]
        if not all(isinstance(vm, VmRecord) for vm in vms):
            return None
        self._adopt(record, [vm for vm in vms if isinstance(vm, VmRecord)])
        return StoredChange(migration=name, vm_id=MIGRATION_ITSELF, created=True)

    # --- loading -------------------------------------------------------------------
    async def load(self) -> None:
        """Read every stored migration and its unsent messages (once, at start-up)."""
        records: dict[str, MigrationRecord] = {}
        vms: dict[str, VmRecord] = {}
        for key, entry in (await read_matching(self._kv, f"{PREFIX}.>")).items():
            try:
                value: msgspec.Struct
                if ".vm." in key:
                    value = vms[key] = _vm_decoder.decode(entry.value)
                else:
                    value = records[key] = _record_decoder.decode(entry.value)
            except msgspec.DecodeError as error:
                log.error("ignoring unreadable migration key %s: %s", key, error)
                continue
            self._written[key] = value
            self._revisions[key] = entry.revision
        for record in records.values():
            keys = [vm_key(record.name, vm_id) for vm_id in record.vm_ids]
            missing = [key for key in keys if key not in vms]
            if missing:
                log.error("migration %s is incomplete in the bucket (missing %s); ignoring it", record.name, missing)
                continue
            self._adopt(record, [vms[key] for key in keys])
        log.info("loaded %d migrations (%d unsent outboxes)", len(self._migrations), len(self._outboxes))

    def _adopt(self, record: MigrationRecord, vms: list[VmRecord]) -> None:
        """Take a migration read from the bucket as the copy in memory."""
        name = record.name
        for box in [box for box in self._outboxes if box[0] == name]:
            del self._outboxes[box]
        self._set_outbox(Outbox(migration=name, vm_id=MIGRATION_ITSELF, messages=record.outbox))
        for vm in vms:
            self._set_outbox(Outbox(migration=name, vm_id=vm.vm_id, messages=vm.outbox))
        self._migrations[name] = Migration(**_fields(record, MigrationHeader), vms=tuple(_vm_of(vm) for vm in vms))

    async def _reload(self, name: str) -> None:
        """Replace the copy of ``name`` with what the bucket holds."""
        self._staged.discard(name)
        record = await self._read(migration_key(name), _record_decoder)
        if record is None:
            self._migrations.pop(name, None)
            return
        vms = [await self._read(vm_key(name, vm_id), _vm_decoder) for vm_id in record.vm_ids]
        self._adopt(record, [vm for vm in vms if vm is not None])

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
