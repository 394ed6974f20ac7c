"""Runs one Ferry service process: logs, tracing, NATS, its consumer and its HTTP app.

Each service's ``bootstrap`` builds a :class:`ServiceParts` and hands it to
:func:`run_service`, which owns start-up order and graceful shutdown (stop pulling,
finish in-flight messages, drain NATS, stop HTTP).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import uvicorn
from fastapi import FastAPI
from nats.aio.client import Client
from nats.js import JetStreamContext

from ferry_shared import subjects
from ferry_shared.api_auth.guard import ApiGuard, check_routes
from ferry_shared.bus.connection import NatsAuthenticationError, connect
from ferry_shared.bus.consumer import ConsumerSpec, DurableConsumer, HandlerTable
from ferry_shared.bus.permissions import inbox_prefix
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.health import health_app
from ferry_shared.lifecycle import stop_on_signals
from ferry_shared.logs import configure_logging
from ferry_shared.readiness import Readiness
from ferry_shared.settings import ServiceSettings
from ferry_shared.tracing import configure_tracing

log = logging.getLogger(__name__)

HTTP_SHUTDOWN_GRACE_SECONDS = 2


@dataclass
class Bus:
    """The live NATS connection a service's parts are wired with."""

    nc: Client
    js: JetStreamContext
    publisher: Publisher


@dataclass
class ServiceParts:
    """What a service contributes: its command handlers, the events it reacts to
    (read through its own durable consumer on the events stream), its HTTP routes, its
    background jobs, and the readiness checks of its own parts (mirrors, watches; the
    NATS connection and the consumers are checked by :func:`run_service`)."""

    handlers: HandlerTable
    event_handlers: HandlerTable = field(default_factory=dict)
    app_setup: Callable[[FastAPI], None] = lambda app: None
    background: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(default_factory=list)
    readiness: Readiness = field(default_factory=Readiness)
    api_guard: ApiGuard | None = None
    """Checks the callers of the service's HTTP API (None: a service with no API of its own)."""


A = TypeVar("A")


@dataclass
class Wired(Generic[A]):
    """What every service's ``bootstrap`` returns: the parts :func:`run_service` runs,
    and ``api``, what the service's entrypoints (its HTTP routes) and tests reach.

    Every service has the same composition: ``bootstrap(bus, settings, own_settings)``
    in ``bootstrap.py`` builds a ``Wired``; its ``entrypoints/main.py`` reads the
    settings from the environment (the only place that does), puts the routes on the
    app from ``api`` and hands the parts to :func:`run_service`."""

    parts: ServiceParts
    api: A


Bootstrap = Callable[[Bus, ServiceSettings], Awaitable[ServiceParts]]


async def run_service(service: str, settings: ServiceSettings, bootstrap: Bootstrap) -> None:
    """Start ``service`` and run it until SIGTERM/SIGINT."""
    configure_logging(service, settings.log_level)
    configure_tracing(service)
    stop = stop_on_signals()
    try:
        nc = await connect(
            settings.nats_url,
            name=f"ferry-{service}",
            creds_file=settings.nats_creds_file,
            user=settings.nats_user,
            password_file=settings.nats_password_file,
            ca_file=settings.nats_ca_file,
            inbox_prefix=inbox_prefix(service),
        )
    except NatsAuthenticationError as refused:  # a configuration error: say so, without a traceback
        log.error("%s cannot start: %s", service, refused)
        raise SystemExit(2) from None
    js = nc.jetstream()
    await ensure_topology(js, replicas=settings.jetstream_replicas)
    bus = Bus(nc=nc, js=js, publisher=Publisher(js))
    parts = await bootstrap(bus, settings)

    readiness = Readiness({"nats": lambda: None if nc.is_connected else "NATS disconnected"})
    consumers: dict[str, DurableConsumer] = {}
    if parts.handlers:
        commands = command_consumer_spec(service, settings)
        consumers["consumer"] = DurableConsumer(js, bus.publisher, commands, parts.handlers)
        readiness.add(commands.durable, consumers["consumer"].health.check)
    if parts.event_handlers:
        events = event_consumer_spec(service, parts.event_handlers, settings)
        consumers["event consumer"] = DurableConsumer(js, bus.publisher, events, parts.event_handlers)
        readiness.add(events.durable, consumers["event consumer"].health.check)
    readiness.extend(parts.readiness)

    app = health_app(service, readiness, parts.api_guard)
    parts.app_setup(app)
    check_routes(app)
    # Long-lived responses (the planner's event stream) would hold a graceful shutdown
    # open forever; they get a moment to finish, then are closed.
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=HTTP_SHUTDOWN_GRACE_SECONDS,
    )
    server = uvicorn.Server(config)
    tasks = [asyncio.create_task(server.serve(), name="http")]
    tasks += [asyncio.create_task(consumer.run(stop), name=name) for name, consumer in consumers.items()]
    tasks += [asyncio.create_task(job(stop), name=_job_name(job)) for job in parts.background]
    log.info("%s started", service)
    ended = await _until_stopped_or_ended(stop, tasks)
    log.info("%s stopping", service)
    server.should_exit = True
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await nc.drain()
    if ended:
        raise ServicePartEndedError(", ".join(task.get_name() for task in ended))
    log.info("%s stopped", service)


class ServicePartEndedError(RuntimeError):
    """A part of the service (its HTTP server, a consumer, a background job) ended before it
    was told to stop; the whole service stops, so that it is restarted rather than half alive."""


async def _until_stopped_or_ended(stop: asyncio.Event, tasks: list[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Wait for ``stop``; if a task ends first, log why and return the tasks that ended."""
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if stop.is_set():
        return []  # parts that wait for the stop end with it
    ended = [task for task in tasks if task in done]
    for task in ended:
        error = None if task.cancelled() else task.exception()
        log.error("%s ended before the service was stopped", task.get_name(), exc_info=error)
    return ended


def _job_name(job: Callable[..., object]) -> str:
    return getattr(job, "__qualname__", None) or repr(job)


def command_consumer_spec(service: str, settings: ServiceSettings) -> ConsumerSpec:
    """The durable consumer through which every replica of ``service`` pulls its commands."""
    return ConsumerSpec(
        service=service,
        stream=subjects.COMMANDS_STREAM,
        durable=subjects.durable_name(service),
        filter_subject=subjects.commands_of(service),
        max_in_flight=settings.max_in_flight,
        ack_wait=settings.ack_wait,
    )


def event_consumer_spec(service: str, handlers: HandlerTable, settings: ServiceSettings) -> ConsumerSpec:
    """The durable consumer through which ``service`` reads exactly the events it handles."""
    return ConsumerSpec(
        service=service,
        stream=subjects.EVENTS_STREAM,
        durable=subjects.events_durable_name(service),
        filter_subjects=tuple(sorted({event_type.subject for event_type in handlers})),
        ignore_unknown=True,
        new_only=True,
        max_in_flight=settings.max_in_flight,
    )
