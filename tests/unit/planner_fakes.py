"""Hand-written fakes behind the planner's ports, and fake peers that answer its commands.

``Durable`` is what survives a crash (the bucket); a ``FakeMigrations`` over it is one
process's view, so a restart is a new ``FakeMigrations`` (and new ports) over the same
``Durable``. ``FakePublisher`` can crash before a chosen publish, and checks that every
message it is given was stored in an outbox first.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ferry_planner.domain.inventory_view import SourceView, TargetView
from ferry_planner.domain.maps import NetworkDestination, NetworkMap, NetworkPair, StorageMap, StoragePair
from ferry_planner.domain.migrations import Migration
from ferry_planner.domain.outbox import OUTBOX_TYPES, Commit, Outbox
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_planner.domain.providers import ProviderRecord
from ferry_planner.handlers.context import PlannerPorts
from ferry_shared.credentials import Secret
from ferry_shared.errors import TemporaryError
from ferry_shared.inventory import DatastoreRecord, DiskRecord, HostRecord, NetworkRecord, NicRecord, VmRecord
from ferry_shared.messages import Message
from ferry_shared.migrations import MigrationFinished, StepCommand, StepEvent
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus

MIB = 2**20
R = TypeVar("R", ProviderRecord, NetworkMap, StorageMap, Plan)
Box = tuple[str, str]


class CrashError(Exception):
    """The process died here."""


@dataclass
class Durable:
    """What the planner's bucket holds: migrations and unsent outboxes."""

    migrations: dict[str, Migration] = field(default_factory=dict)
    outboxes: dict[Box, Outbox] = field(default_factory=dict)

    def stored_unsent(self, message: Message) -> bool:
        return any(message in box.messages for box in self.outboxes.values())


class FakeMigrations:
    """The ``MigrationRepository`` port in memory; ``conflicts`` makes that many stores race another writer."""

    def __init__(self, durable: Durable) -> None:
        self.durable = durable
        self._memory = dict(durable.migrations)
        self._staged: set[str] = set()
        self.conflicts = 0

    def get(self, name: str) -> Migration | None:
        return self._memory.get(name)

    def all(self) -> list[Migration]:
        return list(self._memory.values())

    async def create(self, migration: Migration, outbox: Outbox) -> bool:
        if migration.name in self.durable.migrations:
            return False
        self.durable.migrations[migration.name] = self._memory[migration.name] = migration
        self._set(outbox)
        return True

    async def store(self, commit: Commit) -> None:
        name = commit.after.name
        if self.conflicts:
            self.conflicts -= 1
            self._memory[name] = self.durable.migrations[name]
            self._staged.discard(name)
            raise TemporaryError("migration_changed_elsewhere", "raced another writer", delay=0.5)
        self.durable.migrations[name] = self._memory[name] = commit.after
        for box in commit.outboxes:
            self._set(box)
        self._staged.discard(name)

    def stage(self, migration: Migration) -> None:
        self._memory[migration.name] = migration
        self._staged.add(migration.name)

    async def flush(self, name: str) -> None:
        if name in self._staged:
            self.durable.migrations[name] = self._memory[name]
            self._staged.discard(name)

    def staged(self) -> Sequence[str]:
        return sorted(self._staged)

    async def sent(self, name: str, outbox: Outbox) -> None:
        if self.durable.outboxes.get((name, outbox.vm_id)) == outbox:
            del self.durable.outboxes[(name, outbox.vm_id)]

    def unsent(self) -> list[Outbox]:
        return [box for _, box in sorted(self.durable.outboxes.items())]

    def _set(self, box: Outbox) -> None:
        if box.messages:
            self.durable.outboxes[(box.migration, box.vm_id)] = box
        else:
            self.durable.outboxes.pop((box.migration, box.vm_id), None)


class FakePublisher:
    """Records what is published; ``crash_before`` raises :class:`CrashError` instead of that
    publish (counting from 0 in this process)."""

    def __init__(self, durable: Durable, *, crash_before: int | None = None) -> None:
        self.durable = durable
        self.published: list[Message] = []
        self.crash_before = crash_before
        self.calls = 0
        self.unstored: list[Message] = []

    async def publish(self, message: Message) -> object:
        if self.crash_before is not None and self.calls == self.crash_before:
            raise CrashError(f"crashed before publishing {type(message).__name__}")
        self.calls += 1
        if isinstance(message, StepCommand | StepEvent | MigrationFinished):
            assert isinstance(message, OUTBOX_TYPES), f"{type(message).__name__} cannot be stored in an outbox"
        if not self.durable.stored_unsent(message):
            self.unstored.append(message)
        self.published.append(message)
        return None

    def of(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.published if isinstance(m, kind)]


class FakeResources:
    def __init__(self) -> None:
        self.records: dict[tuple[type[Any], str], Any] = {}
        self.revisions: dict[tuple[type[Any], str], int] = {}
        self._next = 0

    def put(self, kind: type[Any], name: str, value: Any) -> None:
        """Store ``value`` as if it had been created earlier (the test's starting state)."""
        self._next += 1
        self.records[(kind, name)], self.revisions[(kind, name)] = value, self._next

    async def get(self, kind: type[R], name: str) -> R | None:
        found: R | None = self.records.get((kind, name))
        return found

    async def revision(self, kind: type[R], name: str) -> int:
        return self.revisions.get((kind, name), 0)

    async def create(self, kind: type[R], name: str, value: R) -> int | None:
        if (kind, name) in self.records:
            return None
        self._next += 1
        self.records[(kind, name)], self.revisions[(kind, name)] = value, self._next
        return self._next

    async def replace(self, kind: type[R], name: str, value: R, *, revision: int) -> int | None:
        if self.revisions.get((kind, name)) != revision:
            return None
        self._next += 1
        self.records[(kind, name)], self.revisions[(kind, name)] = value, self._next
        return self._next

    async def delete(self, kind: type[R], name: str) -> None:
        self.records.pop((kind, name), None)
        self.revisions.pop((kind, name), None)

    async def list(self, kind: type[R]) -> list[R]:
        return [value for (k, _), value in sorted(self.records.items(), key=lambda item: item[0][1]) if k is kind]


class FakeCredentials:
    def __init__(self) -> None:
        self.secrets: dict[str, Secret] = {}

    async def put(self, provider: str, secret: Secret) -> None:
        self.secrets[provider] = secret

    async def get(self, provider: str) -> Secret | None:
        return self.secrets.get(provider)

    async def delete(self, provider: str) -> None:
        self.secrets.pop(provider, None)


@dataclass
class FakeInventory:
    """Change it through :meth:`set_status`, :meth:`set_source` and :meth:`set_target`
    (they count the provider's version up, as the mirror does)."""

    sources: dict[str, SourceView] = field(default_factory=dict)
    statuses: dict[str, ProviderStatus] = field(default_factory=dict)
    targets: dict[str, TargetView] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def set_status(self, provider: str, status: ProviderStatus) -> None:
        self.statuses[provider] = status
        self._changed(provider)

    def set_source(self, provider: str, view: SourceView) -> None:
        self.sources[provider] = view
        self._changed(provider)

    def set_target(self, provider: str, view: TargetView) -> None:
        self.targets[provider] = view
        self._changed(provider)

    def _changed(self, provider: str) -> None:
        self.versions[provider] = self.version(provider) + 1

    def status(self, provider: str) -> ProviderStatus | None:
        return self.statuses.get(provider)

    def version(self, provider: str) -> int:
        return self.versions.get(provider, 0)

    def source_view(self, provider: str) -> SourceView:
        return self.sources.get(provider, SourceView())

    def target_view(self, provider: str, *, checked: bool) -> TargetView:
        found = self.targets.get(provider)
        return TargetView(checked=checked) if found is None else dataclasses.replace(found, checked=checked)


@dataclass
class FakeChanges:
    changes: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, change: dict[str, Any]) -> None:
        self.changes.append(change)


@dataclass
class FakeRevalidation:
    requests: int = 0

    def request(self, inventory_of: str | None = None) -> None:
        self.requests += 1


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


SOURCE = ProviderSpec(name="vc", type="vsphere", url="https://vc/sdk", username="u", insecure=True)
TARGET = ProviderSpec(name="dir", type="local", path="/var/ferry")


def source_vm(number: int, *, host: str = "host-1", disks: int = 1, power_state: str = "poweredOn") -> VmRecord:
    return VmRecord(
        id=f"vm-{number}",
        name=f"app-{number}",
        power_state=power_state,
        cpu_sockets=1,
        cores_per_socket=1,
        memory_mib=1024,
        host_id=host,
        host_name=host.upper(),
        datacenter_name="DC0",
        disks=tuple(
            DiskRecord(key=2000 + i, file_name=f"[ds] app-{number}/d{i}.vmdk", datastore_id="ds-0",
                       datastore_name="LocalDS_0", capacity_bytes=8 * MIB, controller="scsi")
            for i in range(disks)
        ),
        nics=(NicRecord(key=4000, mac=f"00:50:56:00:00:{number:02x}", network_id="net-0", network_name="VM Network"),),
    )  # fmt: skip


@dataclass
class World:
    """Ports over fakes with a Ready plan ``p1`` of ``vms`` (source ``vc`` → local ``dir``)."""

    durable: Durable
    ports: PlannerPorts
    publisher: FakePublisher
    changes: FakeChanges

    @property
    def migrations(self) -> FakeMigrations:
        repository = self.ports.migrations
        assert isinstance(repository, FakeMigrations)
        return repository


def ready_world(vms: Sequence[VmRecord], *, budget: int = 10, crash_before: int | None = None) -> World:
    resources = FakeResources()
    for spec in (SOURCE, TARGET):
        resources.put(ProviderRecord, spec.name, ProviderRecord(spec=spec))
    resources.put(NetworkMap, "net", NetworkMap(
        name="net", source_provider="vc", target_provider="dir",
        pairs=(NetworkPair(source="VM Network", destination=NetworkDestination.POD),),
    ))  # fmt: skip
    resources.put(StorageMap, "sto", StorageMap(
        name="sto", source_provider="vc", target_provider="dir",
        pairs=(StoragePair(source="LocalDS_0", storage_class="standard"),),
    ))  # fmt: skip
    resources.put(Plan, "p1", Plan(
        name="p1", source_provider="vc", target_provider="dir", network_map="net", storage_map="sto",
        target_namespace="default", vms=tuple(PlanVm(ref=vm.name) for vm in vms),
    ))  # fmt: skip
    inventory = FakeInventory(
        sources={
            "vc": SourceView(
                vms=list(vms),
                networks=[NetworkRecord(id="net-0", name="VM Network")],
                datastores=[DatastoreRecord(id="ds-0", name="LocalDS_0")],
                hosts=[HostRecord(id=h, name=h.upper()) for h in sorted({vm.host_id for vm in vms})],
            )
        },
        statuses={name: ProviderStatus(phase=ProviderPhase.READY, generation=1) for name in ("vc", "dir")},
    )
    return world_over(Durable(), resources, inventory, budget=budget, crash_before=crash_before)


def world_over(
    durable: Durable, resources: FakeResources, inventory: FakeInventory, *, budget: int, crash_before: int | None
) -> World:
    publisher = FakePublisher(durable, crash_before=crash_before)
    changes = FakeChanges()
    ports = PlannerPorts(
        resources=resources,
        credentials=FakeCredentials(),
        inventory=inventory,
        migrations=FakeMigrations(durable),
        publisher=publisher,
        changes=changes,
        revalidation=FakeRevalidation(),
        clock=Clock(),
        max_vms_per_host=budget,
    )
    return World(durable=durable, ports=ports, publisher=publisher, changes=changes)


def restarted(world: World, *, crash_before: int | None = None) -> World:
    """The same bucket and inventory, a new process (what was only in memory is gone)."""
    resources, inventory = world.ports.resources, world.ports.inventory
    assert isinstance(resources, FakeResources) and isinstance(inventory, FakeInventory)
    return world_over(
        world.durable, resources, inventory, budget=world.ports.max_vms_per_host, crash_before=crash_before
    )
