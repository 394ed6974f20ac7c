"""The ports between the inventory service's use cases and its adapters.

The handlers reach providers' watchers through a :class:`Watchers` (the supervisor),
the stored connections through a :class:`Connections`, stored passwords and
kubeconfigs through :class:`Credentials`, and the bus through an
:class:`EventPublisher`; powering source VMs is :mod:`.power`'s port. Unit tests use
hand-written fakes of each.

A *watcher* connects to one provider, loads its whole inventory once, then keeps it
live from the provider's own change feed (vSphere ``WaitForUpdatesEx``, Kubernetes
watches) — never a polling loop — until told to stop. It reports what it sees to an
:class:`InventorySink` and how the connection is doing to a :class:`StatusReporter`.
"""

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ferry_shared.credentials import Secret
from ferry_shared.inventory import Record
from ferry_shared.messages import Message
from ferry_shared.providers import ProviderConnection, ProviderSpec, ProviderStatus

KindAndRecord = tuple[str, Record]
"""A record with its kind (``vm``, ``network``, … see ``ferry_shared.inventory``)."""

KindAndId = tuple[str, str]


class InventorySink(Protocol):
    """Where a watcher puts what it found."""

    async def replace_all(self, records: Sequence[KindAndRecord]) -> None:
        """The provider's complete inventory (after a full load or a reconnect)."""

    async def apply(self, put: Sequence[KindAndRecord], deleted: Sequence[KindAndId]) -> None:
        """Incremental changes: records added or changed, and records removed."""


class StatusReporter(Protocol):
    """Where a watcher says how its connection is doing."""

    async def report(self, status: ProviderStatus) -> None: ...


class Watcher(Protocol):
    """Keeps one provider's inventory live until ``stop`` is set."""

    async def run(self, sink: InventorySink, status: StatusReporter, stop: asyncio.Event) -> None:
        """Connect, load, follow changes; report errors as statuses and retry with
        back-off while ``stop`` is unset. Returns when ``stop`` is set."""


class Watchers(Protocol):
    """Runs one watcher per connected provider (the adapters' ``WatcherSupervisor``)."""

    def lock(self, provider: str) -> AbstractAsyncContextManager[object]:
        """Held while a command about ``provider`` runs, so a delete then a re-add cannot interleave."""
        ...

    def generation(self, provider: str) -> int | None:
        """The generation of ``provider``'s running watcher, None when none runs."""
        ...

    async def start(self, spec: ProviderSpec, secret: Secret | None, generation: int) -> None:
        """Run a watcher for ``spec``, replacing an older generation's."""

    async def forget(self, provider: str) -> None:
        """Stop ``provider``'s watcher and delete its inventory and status."""


class Connections(Protocol):
    """The providers to keep connected, stored so a restart reconnects them."""

    async def put(self, connection: ProviderConnection) -> None: ...

    async def delete(self, provider: str) -> None: ...


class ConnectionLookup(Protocol):
    """Reads one stored connection: the provider's settings as the planner last gave them."""

    async def get(self, provider: str) -> ProviderConnection | None: ...


class CloneTickets(Protocol):
    """Issues one-time vSphere clone tickets (``SessionManager.AcquireCloneTicket``) from a
    session the inventory logged in with the provider's password."""

    async def issue(self, spec: ProviderSpec, password: Secret) -> Secret:
        """A ticket for ``spec``'s vCenter; a ``ProviderError`` says why there is none."""
        ...


class Credentials(Protocol):
    """The stored secrets of providers (the shared ``CredentialStore``)."""

    async def get(self, provider: str) -> Secret | None: ...


class EventPublisher(Protocol):
    """Publishes events (the bus's ``Publisher``)."""

    async def publish(self, message: Message) -> object: ...
