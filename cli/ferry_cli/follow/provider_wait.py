"""Waiting, after ``ferry provider add`` or ``update``, until the provider is ready or in
error, within a deadline.

The planner's change stream is opened before the provider is added or changed, so no
change falls between the two; the provider is read again on each change about it
(``provider``, ``inventory``, ``resync``). The stream is read by a thread that hands its
changes over a queue, so the deadline holds even while the stream is quiet. When the
stream cannot be opened (within ``open_wait`` seconds) or breaks off, the provider is read
every ``poll_every`` seconds instead.
"""

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from rich.console import Console
from rich.text import Text

from ferry_cli.client import CliError
from ferry_cli.follow.ports import Change, ChangeFeed, StreamLostError, View

SETTLED_PHASES: Final = frozenset({"ready", "error"})
DEFAULT_TIMEOUT: Final = 300.0
"""Seconds ``provider add``/``update`` wait: connecting plus loading a large inventory."""
_OPENED: Final = "opened"


class WaitDisplay(Protocol):
    """Where the wait shows itself (a spinner on a terminal, plain lines elsewhere)."""

    def show(self, view: View) -> None:
        """The provider as last read."""

    def notice(self, text: str) -> None:
        """Something to tell the user that is not the provider's status."""

    def close(self) -> None:
        """The wait is over (stop the spinner)."""


def settled(view: View) -> bool:
    """Whether the inventory reported ready or error on the provider's current settings."""
    status = view["status"]
    return status["phase"] in SETTLED_PHASES and int(status.get("generation", 0)) >= int(view.get("generation", 0))


def is_about(change: Change, name: str) -> bool:
    return change.get("kind") == "resync" or (
        change.get("kind") in ("provider", "inventory") and change.get("name") == name
    )


class WaitTimeoutError(CliError):
    """The provider did not settle in time (it goes on connecting)."""


@dataclass
class ProviderWait:
    """Waits for the provider that ``start`` adds or changes (``read`` reads it again by name)."""

    feed: ChangeFeed
    read: Callable[[str], View]
    display: WaitDisplay
    timeout: float = DEFAULT_TIMEOUT
    poll_every: float = 2.0
    open_wait: float = 3.0
    """Seconds the stream may take to open before the change is made without it."""
    clock: Callable[[], float] = time.monotonic

    def run(self, start: Callable[[], View]) -> View:
        """Call ``start`` with the stream open, then wait until the provider is settled;
        returns its last view, or raises :class:`WaitTimeoutError` at the deadline."""
        deadline = self.clock() + self.timeout
        changes: queue.Queue[Change | str | Exception] = queue.Queue()
        stop = threading.Event()
        reader = threading.Thread(target=self._pump, args=(changes, stop), name="provider-wait", daemon=True)
        reader.start()
        try:
            streaming = self._opened(changes, deadline)
            view = start()
            self.display.show(view)
            name = str(view["spec"]["name"])
            while not settled(view):
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise WaitTimeoutError(
                        f"provider {name} is still {view['status']['phase']} after {self.timeout:.0f}s; it goes on "
                        f"connecting: see `ferry provider show {name}`"
                    )
                if not streaming:
                    self._pause(changes, min(self.poll_every, remaining))
                    view = self._reread(name, view)
                    continue
                try:
                    item = changes.get(timeout=min(self.poll_every, remaining))
                except queue.Empty:
                    continue
                if isinstance(item, Exception):
                    self.display.notice(f"event stream lost ({item}); reading the provider every {self.poll_every:g}s")
                    streaming = False
                    view = self._reread(name, view)
                elif isinstance(item, dict) and is_about(item, name):
                    view = self._reread(name, view)
            return view
        finally:
            stop.set()

    def _opened(self, changes: "queue.Queue[Change | str | Exception]", deadline: float) -> bool:
        """Whether the stream opened (else the wait reads the provider now and then)."""
        try:
            first = changes.get(timeout=max(0.0, min(self.open_wait, deadline - self.clock())))
        except queue.Empty:
            first = StreamLostError(f"not opened within {self.open_wait:g}s")
        if first == _OPENED:
            return True
        self.display.notice(f"no event stream ({first}); reading the provider every {self.poll_every:g}s")
        return False

    def _reread(self, name: str, view: View) -> View:
        fresh = self.read(name)
        if fresh != view:
            self.display.show(fresh)
        return fresh

    @staticmethod
    def _pause(changes: "queue.Queue[Change | str | Exception]", seconds: float) -> None:
        """Wait ``seconds`` (the queue is empty once the stream is gone: this just waits)."""
        try:
            changes.get(timeout=seconds)
        except queue.Empty:
            return

    def _pump(self, changes: "queue.Queue[Change | str | Exception]", stop: threading.Event) -> None:
        try:
            with self.feed.open() as stream:
                changes.put(_OPENED)
                for change in stream:
                    if stop.is_set():
                        return
                    changes.put(change)
            changes.put(StreamLostError("the planner ended its event stream"))
        except (StreamLostError, CliError) as error:
            changes.put(error)


def status_line(view: View) -> str:
    """``provider vc: ready (vm=9 host=3)``, ``provider vc: error: … (invalid_login)``."""
    status, name = view["status"], view["spec"]["name"]
    if status["phase"] == "error":
        return f"provider {name}: error: {status.get('message') or 'no message'} ({status.get('reason') or '?'})"
    counts = " ".join(f"{k}={v}" for k, v in sorted(status.get("counts", {}).items()))
    return f"provider {name}: {status['phase']}" + (f" ({counts})" if counts else "")


class LineDisplay:
    """Plain lines (a log, a pipe): one per change of the status line."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo
        self._last = ""

    def show(self, view: View) -> None:
        line = status_line(view)
        if line != self._last:
            self._echo(line)
            self._last = line

    def notice(self, text: str) -> None:
        self._echo(text)

    def close(self) -> None:
        return


class SpinnerDisplay:
    """A spinner with the status line on a terminal (rich redraws it from its own thread)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status = console.status("waiting for the planner", spinner="dots")
        self._status.start()

    def show(self, view: View) -> None:
        self._status.update(Text(f"waiting: {status_line(view)}"))

    def notice(self, text: str) -> None:
        self._console.print(Text(text), highlight=False)

    def close(self) -> None:
        self._status.stop()
