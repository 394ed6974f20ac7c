"""A service whose background job dies stops as a whole (run_service, on real NATS)."""

import asyncio
import signal

import pytest

from ferry_peers.nats_server import NatsServer
from ferry_shared.service import Bus, ServicePartEndedError, ServiceParts, run_service
from ferry_shared.settings import ServiceSettings


async def test_a_background_job_that_dies_stops_the_service_with_its_name(nats_server: NatsServer) -> None:
    stopped: list[str] = []

    async def doomed(stop: asyncio.Event) -> None:
        raise RuntimeError("the follower lost its feed")

    async def patient(stop: asyncio.Event) -> None:
        await stop.wait()
        stopped.append("patient")

    async def compose(bus: Bus, settings: ServiceSettings) -> ServiceParts:
        return ServiceParts(handlers={}, background=[doomed, patient])

    settings = ServiceSettings(**nats_server.settings_options(), http_host="127.0.0.1", http_port=0)
    try:
        with pytest.raises(ServicePartEndedError, match="doomed"):
            await asyncio.wait_for(run_service("probe", settings, compose), timeout=30)
    finally:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    assert stopped == ["patient"], "the other parts were stopped, not abandoned"
