"""Schemathesis against the planner's and the inventory's real OpenAPI documents.

Each service runs in-process with its real bootstrap and HTTP API on a real
nats-server (the inventory bucket seeded with a ready vCenter and cluster), in a thread
of its own so that schemathesis's blocking HTTP client can call it. Every operation of
``/api/v1`` gets a bounded, deterministic set of generated requests, valid and invalid;
no answer may be a 5xx, have a status its operation does not document, or break the
documented schema, and data the schema forbids must be refused; without a valid token,
every operation answers 401 (with the ``Bearer`` challenge) and nothing else. The event stream
(``GET /api/v1/events``, endless by design) is left to the planner's SSE tests.
"""

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from ferry_inventory.bootstrap import bootstrap as inventory_bootstrap
from ferry_inventory.entrypoints.http_api import install as install_inventory
from ferry_inventory.settings import InventorySettings
from ferry_peers.nats_server import NatsServer, start_nats_server
from ferry_shared import subjects
from ferry_shared.api_auth.guard import check_routes
from ferry_shared.bus.connection import connect
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.health import health_app
from ferry_shared.service import Bus
from ferry_shared.settings import ServiceSettings
from ferry_testpeers.waiting import eventually

from .service_runner import commands_spec, running_parts
from .test_planner_migration import AUTH, local_guard, planner_running, seed_inventory

pytestmark = pytest.mark.nats

EXAMPLES = 25
"""Generated requests per operation (and phase)."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
STARTED_WITHIN = 60.0

Serve = Callable[[Bus], AbstractAsyncContextManager[str]]
"""Runs a service on ``bus`` and yields its base URL until the block ends."""


@contextlib.asynccontextmanager
async def connected(nats: NatsServer) -> AsyncIterator[Bus]:
    nc = await connect(nats.url, name="ferry-contract-test", **nats.connect_options())
    js = nc.jetstream()
    await ensure_topology(js)
    try:
        yield Bus(nc=nc, js=js, publisher=Publisher(js))
    finally:
        await nc.drain()


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a free loopback port, until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started, timeout=10, what="the HTTP server")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def planner(bus: Bus) -> AsyncIterator[str]:
    async with planner_running(bus) as running:
        yield str(running.http.base_url).rstrip("/")


@contextlib.asynccontextmanager
async def inventory(bus: Bus) -> AsyncIterator[str]:
    wired = await inventory_bootstrap(bus, ServiceSettings(), InventorySettings())
    app = health_app(subjects.INVENTORY, {}, local_guard())
    install_inventory(app, wired.api.index)
    check_routes(app)
    consuming = running_parts(bus, wired.parts, commands_spec(subjects.INVENTORY, fetch_timeout=0.2))
    async with consuming, serving(app) as url:
        yield url


@contextlib.contextmanager
def in_thread(nats: NatsServer, serve: Serve) -> Iterator[str]:
    """Runs ``serve`` in an event loop of its own thread; yields its URL until the block ends."""
    url: Future[str] = Future()
    stop: asyncio.Event | None = None
    loop = asyncio.new_event_loop()

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            async with connected(nats) as bus:
                await seed_inventory(bus)
                async with serve(bus) as base:
                    url.set_result(base)
                    await stop.wait()
        except BaseException as error:
            if not url.done():
                url.set_exception(error)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="service-under-test")
    thread.start()
    try:
        yield url.result(timeout=STARTED_WITHIN)
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(STARTED_WITHIN)
        loop.close()


@pytest.fixture(scope="module")
def nats_for_contracts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = start_nats_server(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@contextlib.contextmanager
def contract_of(nats: NatsServer, serve: Serve) -> Iterator[BaseSchema]:
    """The service's OpenAPI as it serves it, limited to ``/api/v1`` without the event stream."""
    with in_thread(nats, serve) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=AUTH)
        schema.config.update(base_url=url)
        yield schema.include(path_regex="^/api/v1/").exclude(path="/api/v1/events")


BOUNDED = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


def broken_promises(schema: BaseSchema) -> list[str]:
    """Each operation, with valid then invalid data: how it broke its contract, if it did."""
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @BOUNDED
            @given(case=operation.as_strategy(generation_mode=mode))
            def keeps_its_contract(case: Case[Any]) -> None:
                case.call_and_validate(checks=CHECKS, headers=AUTH)

            try:
                keeps_its_contract()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be made"
                # Nothing can be sent that breaks the schema (no parameters, no body).
            except (Exception, FailureGroup) as error:  # noqa: BLE001 - every broken promise is reported at the end
                found.append(f"{operation.label} ({mode.value}): {_explained(error)}")
    return found


UNAUTHENTICATED = settings(BOUNDED, max_examples=3)


def open_without_token(schema: BaseSchema) -> list[str]:
    """Each operation a generated request without a token is not refused with a 401 (and
    with the token, is), or whose refusal lacks the challenge or the error shape."""
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @UNAUTHENTICATED
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def refused(case: Case[Any]) -> None:
            anonymous = case.call(headers={"Authorization": ""})
            assert anonymous.status_code == 401, f"{anonymous.status_code} {anonymous.text[:200]}"
            challenge = {k.lower(): v for k, v in anonymous.headers.items()}["www-authenticate"]
            assert str(challenge[0] if isinstance(challenge, list) else challenge).startswith("Bearer")
            assert anonymous.json()["reason"] == "unauthenticated"
            assert case.call(headers={"Authorization": "Bearer not-the-token"}).status_code == 401
            assert case.call(headers=AUTH).status_code != 401

        try:
            refused()
        except (Exception, FailureGroup) as error:  # noqa: BLE001 - every open operation is reported at the end
            found.append(f"{operation.label}: {_explained(error)}")
    return found


def _explained(error: BaseException) -> str:
    inner = getattr(error, "exceptions", ())
    return "\n".join([str(error), *(_explained(e) for e in inner)]) if inner else str(error)


def operations(schema: BaseSchema) -> set[str]:
    return {result.ok().label for result in schema.get_all_operations()}


# The service runs in a thread of this process: its own (legitimate) use of the global
# ``random`` while hypothesis draws an example looks to hypothesis like a strategy using it.
RANDOM_IN_ANOTHER_THREAD = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)


@RANDOM_IN_ANOTHER_THREAD
def test_the_planner_api_keeps_its_contract(nats_for_contracts: NatsServer) -> None:
    with contract_of(nats_for_contracts, planner) as schema:
        assert "POST /api/v1/plans" in operations(schema) and len(operations(schema)) == 21, sorted(operations(schema))
        failures = broken_promises(schema) + open_without_token(schema)
    assert not failures, "\n\n".join(failures)


@RANDOM_IN_ANOTHER_THREAD
def test_the_inventory_api_keeps_its_contract(nats_for_contracts: NatsServer) -> None:
    with contract_of(nats_for_contracts, inventory) as schema:
        assert len(operations(schema)) == 4, sorted(operations(schema))
        failures = broken_promises(schema) + open_without_token(schema)
    assert not failures, "\n\n".join(failures)
