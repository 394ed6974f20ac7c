"""Readiness of a running service (run_service on a real nats-server): a consumer whose
stream is deleted turns ``/readyz`` 503 with the reason, keeps retrying, and is ready and
consuming again once the stream is back."""

import asyncio
import os
import signal
import socket
from typing import Any, ClassVar

import httpx
import pytest

from ferry_peers.nats_server import NatsServer
from ferry_shared import subjects
from ferry_shared.bus.connection import connect
from ferry_shared.bus.delivery import Delivery
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.messages import Command
from ferry_shared.readiness import Health, Readiness
from ferry_shared.service import Bus, ServiceParts, run_service
from ferry_shared.settings import ServiceSettings
from ferry_testpeers.waiting import async_wait_for, eventually

pytestmark = pytest.mark.nats

SERVICE = "readysvc"


class Ping(Command, frozen=True, kw_only=True, tag="ferry.test.ping.v1"):
    subject: ClassVar[str] = subjects.command_subject(SERVICE, "ping")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def readyz(url: str) -> tuple[int, dict[str, Any]] | None:
    try:
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"{url}/readyz", timeout=2)
    except httpx.TransportError:
        return None
    return answer.status_code, answer.json()


async def test_a_consumer_whose_stream_is_deleted_is_not_ready_until_it_is_back(nats_server: NatsServer) -> None:
    pings: list[Ping] = []
    own = Health()

    async def ping(message: Ping, delivery: Delivery) -> None:
        pings.append(message)

    async def compose(bus: Bus, settings: ServiceSettings) -> ServiceParts:
        return ServiceParts(handlers={Ping: ping}, readiness=Readiness({"own part": own.check}))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = ServiceSettings(**nats_server.settings_options(), http_host="127.0.0.1", http_port=port)
    service = asyncio.create_task(run_service(SERVICE, settings, compose))
    nc = await connect(nats_server.url, name="ferry-test", **nats_server.connect_options())
    js = nc.jetstream()
    durable = subjects.durable_name(SERVICE)

    async def answer_is(status: int) -> dict[str, Any] | None:
        answer = await readyz(url)
        return answer[1] if answer is not None and answer[0] == status else None

    try:
        assert await async_wait_for(lambda: answer_is(200), timeout=20, what="ready") == {
            "status": "ready",
            "service": SERVICE,
            "failing": {},
        }
        await js.delete_stream(subjects.COMMANDS_STREAM)
        body = await async_wait_for(lambda: answer_is(503), timeout=10, what="not ready without the stream")
        assert list(body["failing"]) == [durable]
        assert f"{subjects.COMMANDS_STREAM}/{durable}" in body["failing"][durable]
        assert "since" in body["failing"][durable]

        own.not_ready("the own part is down")  # a part's own check is on /readyz too
        body = await async_wait_for(lambda: answer_is(503), timeout=5, what="still not ready")
        assert body["failing"]["own part"].startswith("the own part is down (since ")
        own.ready()

        await ensure_topology(js)  # the stream is back: the consumer binds again and consumes
        await async_wait_for(lambda: answer_is(200), timeout=30, what="ready again")
        await Publisher(js).publish(Ping(message_id="ping-1"))
        await eventually(lambda: len(pings) == 1, timeout=10, what="the command handled after the recovery")
        assert not service.done(), "the service kept running through the failures"
    finally:
        await nc.close()
        os.kill(os.getpid(), signal.SIGTERM)  # run_service stops on it, like a pod being deleted
        try:
            await asyncio.wait_for(service, 30)
        finally:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
