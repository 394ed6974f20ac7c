"""The planner's migrations API and change stream over HTTP (the production side of
:mod:`ferry_cli.follow.ports`)."""

import contextlib
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from ferry_cli.client import ApiClient, CliError, error_text, refusal_text
from ferry_cli.follow.ports import Change, StreamLostError, View
from ferry_cli.follow.sse import parse_sse

READ_TIMEOUT = 45.0
"""The planner writes a heartbeat every 15 s; three missed ones mean the stream is dead."""


class HttpChangeFeed:
    """``GET /api/v1/events``, streamed with httpx."""

    def __init__(
        self, planner: ApiClient, *, read_timeout: float = READ_TIMEOUT, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._planner = planner
        self._timeout = httpx.Timeout(10.0, read=read_timeout)
        self._transport = transport

    @contextlib.contextmanager
    def open(self) -> Iterator[Iterator[Change]]:
        url = self._planner.url("/events")
        try:
            with (
                httpx.Client(timeout=self._timeout, transport=self._transport) as client,
                client.stream(
                    "GET", url, headers={"Accept": "text/event-stream", **self._planner.headers()}
                ) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    refused = refusal_text(response, "planner")
                    raise CliError(refused or f"the planner refused its event stream: {error_text(response)}")
                lines = response.iter_lines()
                # The planner writes its first line (": connected") once it has subscribed: from
                # here on no change is missed, so a snapshot read now is safe to follow.
                first = next(lines, None)
                if first is None:
                    raise StreamLostError("the planner closed its event stream at once")
                yield _changes(itertools.chain([first], lines))
        except httpx.HTTPError as error:
            raise StreamLostError(f"{type(error).__name__} on {url}") from error


def _changes(lines: Iterable[str]) -> Iterator[Change]:
    try:
        for event in parse_sse(lines):
            try:
                change: Any = json.loads(event.data)
            except ValueError:
                continue  # not ours to interpret; the next snapshot corrects anything missed
            if isinstance(change, dict):
                yield change
    except httpx.HTTPError as error:
        raise StreamLostError(type(error).__name__) from error


class HttpMigrationsApi:
    """``/api/v1/migrations`` of the planner."""

    def __init__(self, planner: ApiClient) -> None:
        self._planner = planner

    def create(self, plan: str, name: str | None) -> View:
        body = {"plan": plan} | ({"name": name} if name else {})
        view: View = self._planner.post("/migrations", body)
        return view

    def get(self, name: str) -> View:
        view: View = self._planner.get(f"/migrations/{name}")
        return view
