"""What following a migration needs from the outside: the planner's migrations API and
its change stream. The HTTP implementations are in :mod:`ferry_cli.follow.http_planner`; tests
use hand-written fakes."""

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

Change = dict[str, Any]
"""One server-sent-events payload: ``{"kind": "migration" | "migration_vm" | "resync" | …, …}``."""

View = dict[str, Any]
"""A MigrationView as the planner's API returns it."""


class StreamLostError(Exception):
    """The change stream could not be opened or broke off; reconnecting may help."""


class ChangeFeed(Protocol):
    """The planner's change stream."""

    def open(self) -> AbstractContextManager[Iterator[Change]]:
        """Subscribe. Once entered, every later change is delivered, in order; iterating
        raises :class:`StreamLostError` (or ends) when the stream breaks."""
        ...


class MigrationsApi(Protocol):
    """The planner's migration resources."""

    def create(self, plan: str, name: str | None) -> View:
        """``POST /migrations``: start a migration of ``plan``."""
        ...

    def get(self, name: str) -> View:
        """``GET /migrations/{name}``; raises ``UnreachableError`` when the planner does not answer."""
        ...
