"""Following a migration the way ``ferry migrate`` and ``ferry migration show --watch``
do: live bars and a summary, or JSON lines; Ctrl-C stops following, not the migration."""

from collections.abc import Callable
from enum import StrEnum

import typer
from rich.console import Console
from rich.text import Text

from ferry_cli.follow.follower import Follower, Reconnect
from ferry_cli.follow.jsonlines import JsonLinesDisplay
from ferry_cli.follow.live import LiveDisplay
from ferry_cli.follow.ports import ChangeFeed, MigrationsApi, View
from ferry_cli.follow.state import EXIT_INTERRUPTED
from ferry_cli.follow.summary import summary


class FollowFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def follow_migration(
    start: Callable[[MigrationsApi], View],
    feed: ChangeFeed,
    api: MigrationsApi,
    fmt: FollowFormat,
    console: Console,
    *,
    reconnect: Reconnect | None = None,
    jsonlines: JsonLinesDisplay | None = None,
    live: LiveDisplay | None = None,
    interruptible: bool = True,
) -> View:
    """Start or read the migration with ``start``, follow it to its end and show the
    result; returns the final view. Ctrl-C raises ``typer.Exit(130)`` after saying how to
    watch again or cancel (or, when not ``interruptible``, goes up as KeyboardInterrupt)."""
    lines = jsonlines or JsonLinesDisplay()
    live = live or LiveDisplay(console)
    follower = Follower(feed=feed, api=api, display=lines if fmt is FollowFormat.JSON else live)
    if reconnect is not None:
        follower.reconnect = reconnect
    try:
        if fmt is FollowFormat.JSON:
            view = follower.run(lambda: start(api))
        else:
            with live:
                view = follower.run(lambda: start(api))
    except KeyboardInterrupt:
        if not interruptible:
            raise
        _interrupted(follower.name, Console(stderr=True))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if fmt is FollowFormat.JSON:
        lines.final(view)
    else:
        console.print(summary(view))
    return view


def _interrupted(name: str | None, console: Console) -> None:
    if name is None:
        console.print("stopped before the planner answered; see `ferry migration list`", highlight=False)
        return
    console.print(Text(f"stopped following migration {name}; it goes on.", style="yellow"))
    console.print(f"watch it again: ferry migration show {name} --watch", highlight=False)
    console.print(f"cancel it:      ferry migration cancel {name}", highlight=False)
