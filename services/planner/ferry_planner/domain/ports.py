"""The ports of the planner: what its use cases need from the outside world.

Adapters implement them over JetStream KV, the bus and the server-sent-events fan-out;
unit tests use hand-written fakes (``tests/unit/planner_fakes.py``).
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import msgspec

from ferry_planner.domain.inventory_view import SourceView, TargetView
from ferry_planner.domain.maps import NetworkMap, StorageMap
from ferry_planner.domain.migrations import Migration
from ferry_planner.domain.outbox import Commit, Outbox
from ferry_planner.domain.plans import Plan
from ferry_planner.domain.providers import ProviderRecord
from ferry_shared.credentials import Secret
from ferry_shared.messages import Message
from ferry_shared.providers import ProviderStatus

Resource = TypeVar("Resource", ProviderRecord, NetworkMap, StorageMap, Plan)

Clock = Callable[[], datetime]
"""Now, timezone-aware."""


class Resources(Protocol):
    """Providers, maps and plans, one record per name, with the store's revision."""

    async def get(self, kind: type[Resource], name: str) -> Resource | None: ...

    async def revision(self, kind: type[Resource], name: str) -> int:
        """The store's revision of the record (0 when absent): changes whenever it is written."""
        ...

    async def create(self, kind: type[Resource], name: str, value: Resource) -> int | None:
        """Store ``value`` only if ``name`` is free: its revision, or None when taken."""
        ...

    async def replace(self, kind: type[Resource], name: str, value: Resource, *, revision: int) -> int | None:
        """Store ``value`` only if the record is still at ``revision``: its new revision, or
        None when it was written (or deleted) meanwhile."""
        ...

    async def delete(self, kind: type[Resource], name: str) -> None: ...

    async def list(self, kind: type[Resource]) -> list[Resource]: ...


class Credentials(Protocol):
    """Provider secrets, kept apart from their settings."""

    async def put(self, provider: str, secret: Secret) -> None: ...

    async def get(self, provider: str) -> Secret | None: ...

    async def delete(self, provider: str) -> None: ...


class InventoryView(Protocol):
    """The inventory as the planner last saw it (a mirror, never a provider call)."""

    def status(self, provider: str) -> ProviderStatus | None: ...

    def version(self, provider: str) -> int:
        """Changes whenever a record or the status of ``provider`` changes (source or target side)."""
        ...

    def source_view(self, provider: str) -> SourceView: ...

    def target_view(self, provider: str, *, checked: bool) -> TargetView: ...


class MigrationRepository(Protocol):
    """Migrations, each VM stored together with the messages its last change must send.

    Reads come from memory. :meth:`store` writes a :class:`Commit` (every changed VM
    and its outbox, in one write per VM) and raises ``TemporaryError`` when another
    writer changed the migration meanwhile (the copy is then re-read); :meth:`stage`
    keeps a progress-only change in memory until :meth:`flush`.
    """

    def get(self, name: str) -> Migration | None: ...

    def all(self) -> list[Migration]: ...

    async def create(self, migration: Migration, outbox: Outbox) -> bool:
        """Store a new migration; False when the name is taken."""
        ...

    async def store(self, commit: Commit) -> None: ...

    def stage(self, migration: Migration) -> None: ...

    async def flush(self, name: str) -> None:
        """Store what was staged for ``name``."""
        ...

    def staged(self) -> Sequence[str]:
        """Names of the migrations with changes still only in memory."""
        ...

    async def sent(self, name: str, outbox: Outbox) -> None:
        """The messages of ``outbox`` were published: forget them (unless a newer change replaced them)."""
        ...

    def unsent(self) -> list[Outbox]:
        """Every outbox stored but not yet confirmed sent (replayed on start)."""
        ...


class Publisher(Protocol):
    """Publishes messages on the bus (deduplicated by ``message_id``)."""

    async def publish(self, message: Message) -> object: ...


class ChangeFeed(Protocol):
    """The server-sent-events stream: each change to every open subscriber."""

    def publish(self, change: dict[str, Any]) -> None: ...


class Leadership(Protocol):
    """Whether this replica runs the migrations (holds the lease); every replica serves the API."""

    def is_leader(self) -> bool: ...


class StoredChange(msgspec.Struct, frozen=True, kw_only=True):
    """What a key another replica wrote changed: a VM, or the migration itself (``created`` when new)."""

    migration: str
    vm_id: str
    created: bool = False


class Revalidation(Protocol):
    """Asks for every plan to be validated again soon (debounced)."""

    def request(self, inventory_of: str | None = None) -> None:
        """Something changed (the inventory of provider ``inventory_of``, when given)."""
        ...
