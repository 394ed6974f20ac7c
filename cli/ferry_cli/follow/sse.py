"""Server-sent events: turning the lines of a ``text/event-stream`` into events (the
WHATWG rules: ``field: value`` lines, ``data`` lines joined, a blank line dispatches,
``:`` lines are comments)."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event."""

    event: str
    data: str
    id: str = ""


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """The events in ``lines`` (each without its line ending); a last event without its
    blank line is not dispatched, as the standard says."""
    event, data, last_id = "", list[str](), ""
    for line in lines:
        if not line:
            if data:
                yield SseEvent(event=event or "message", data="\n".join(data), id=last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id" and "\0" not in value:
            last_id = value
