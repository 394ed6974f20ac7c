"""Progress for scripts: one JSON object per line — every change of the migration in the
server-sent-events payload format, a ``migration`` change for every view re-read from the
API (start, reconnect, resync), and the final MigrationView as the last line."""

import json
import sys
from collections.abc import Callable

from ferry_cli.follow.ports import Change, View


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


class JsonLinesDisplay:
    """A :class:`~ferry_cli.follow.follower.Display` writing JSON lines; notices go to stderr."""

    def __init__(self, write: Callable[[str], None] = _stdout, warn: Callable[[str], None] = _stderr) -> None:
        self._write = write
        self._warn = warn

    def snapshot(self, view: View) -> None:
        self._write(json.dumps({"kind": "migration", "name": view["name"], "migration": view}))

    def change(self, change: Change, view: View) -> None:
        self._write(json.dumps(change))

    def notice(self, text: str) -> None:
        self._warn(text)

    def final(self, view: View) -> None:
        self._write(json.dumps(view))
