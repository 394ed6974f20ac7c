"""Following one migration to its end: a snapshot, then every change from the planner's
stream, re-reading the migration after a dropped stream or a ``resync``.

The stream is opened before the snapshot is read (or the migration started), so no
change falls between the two. Nothing here polls: between changes it waits on the stream.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ferry_cli.client import CliError, UnreachableError
from ferry_cli.follow.ports import Change, ChangeFeed, MigrationsApi, StreamLostError, View
from ferry_cli.follow.state import apply_change, is_about, is_finished


class Display(Protocol):
    """Where the migration's progress goes (bars, JSON lines)."""

    def snapshot(self, view: View) -> None:
        """A whole view read from the API: at the start, after a reconnect or a resync."""

    def change(self, change: Change, view: View) -> None:
        """One change of this migration, and the view after it."""

    def notice(self, text: str) -> None:
        """Something to tell the user that is not progress (the stream was lost, …)."""


@dataclass
class Reconnect:
    """How to retry a lost stream: waits between attempts (the last repeats), and when to give up."""

    delays: Sequence[float] = (0.2, 0.5, 1.0, 2.0, 5.0)
    give_up_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclass
class Follower:
    """Follows the migration that ``start`` creates or reads, until it is no longer Running."""

    feed: ChangeFeed
    api: MigrationsApi
    display: Display
    reconnect: Reconnect = field(default_factory=Reconnect)
    view: View | None = None
    """The latest view (None until the migration was started or first read)."""

    @property
    def name(self) -> str | None:
        return None if self.view is None else str(self.view["name"])

    def run(self, start: Callable[[], View]) -> View:
        """Call ``start`` once (``POST`` or ``GET``) with the stream open, then follow; returns the final view."""
        lost_since: float | None = None
        attempt = 0
        while True:
            try:
                with self.feed.open() as changes:
                    finished = self._snapshot(start() if self.view is None else self._reread())
                    if lost_since is not None:
                        self.display.notice("event stream back; following again")
                    lost_since, attempt = None, 0
                    if finished or self._follow(changes):
                        assert self.view is not None
                        return self.view
                raise StreamLostError("the planner ended its event stream")
            except StreamLostError as error:
                if self.view is None:
                    raise CliError(f"cannot open the planner's event stream ({error}); is it running?") from None
                now = self.reconnect.clock()
                if lost_since is None:
                    lost_since = now
                    self.display.notice(f"event stream lost ({error}); reconnecting")
                elif now - lost_since > self.reconnect.give_up_after:
                    raise CliError(
                        f"lost the planner's event stream for {now - lost_since:.0f}s ({error}); migration "
                        f"{self.name} goes on: resume with `ferry migration show {self.name} --watch`"
                    ) from None
                self.reconnect.sleep(self.reconnect.delays[min(attempt, len(self.reconnect.delays) - 1)])
                attempt += 1

    def _follow(self, changes: Iterator[Change]) -> bool:
        """Apply changes until the migration ends (True) or the stream does (False)."""
        for change in changes:
            assert self.view is not None
            if change.get("kind") == "resync":
                if self._snapshot(self._reread()):
                    return True
            elif is_about(change, self.view["name"]):
                self.view = apply_change(self.view, change)
                self.display.change(change, self.view)
                if is_finished(self.view):
                    return True
        return False

    def _snapshot(self, view: View) -> bool:
        self.view = view
        self.display.snapshot(view)
        return is_finished(view)

    def _reread(self) -> View:
        assert self.name is not None
        try:
            return self.api.get(self.name)
        except UnreachableError as error:
            raise StreamLostError(str(error)) from error
