"""Runs one service's bootstrap parts as ``run_service`` does: its command consumer on
real NATS (with test-sized patience) and its background jobs; shared by the services'
integration tests."""

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from ferry_shared.bus.consumer import ConsumerSpec, DurableConsumer
from ferry_shared.service import Bus, ServiceParts, command_consumer_spec
from ferry_shared.settings import ServiceSettings

STOP_WITHIN = 30.0


def commands_spec(service: str, **tuning: Any) -> ConsumerSpec:
    """``service``'s command consumer as the service runs it, with ``tuning`` (``fetch_timeout``, …) replaced."""
    return dataclasses.replace(command_consumer_spec(service, ServiceSettings()), **tuning)


@contextlib.asynccontextmanager
async def running_parts(bus: Bus, parts: ServiceParts, spec: ConsumerSpec) -> AsyncIterator[None]:
    """``parts.handlers`` behind a consumer of ``spec`` and ``parts.background``, until the block ends."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(DurableConsumer(bus.js, bus.publisher, spec, parts.handlers).run(stop))]
    tasks += [asyncio.create_task(job(stop)) for job in parts.background]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), STOP_WITHIN)
