"""The ports between the inventory service's use cases and its provider adapters.

A *watcher* connects to one provider, loads its whole inventory once, then keeps it
live from the provider's own change feed (vSphere ``WaitForUpdatesEx``, Kubernetes
watches) — never a polling loop — until told to stop. It reports what it sees to an
:class:`InventorySink` and how the connection is doing to a :class:`StatusReporter`.
"""

import asyncio
from collections.abc import Sequence
from typing import Protocol

from ferry_shared.inventory import Record
from ferry_shared.providers import ProviderStatus

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
