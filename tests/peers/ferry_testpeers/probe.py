"""Probe messages and a consumer process used to test the bus against real NATS.

``python -m ferry_testpeers.probe NATS_URL JOURNAL`` (its NATS identity in
``FERRY_NATS_CREDS_FILE`` and ``FERRY_NATS_CA_FILE``) runs a durable consumer whose
handler appends ``started``/``done`` lines to JOURNAL and holds each message for as
long as it asks, so a test can kill the process mid-message.
"""

import asyncio
import os
import sys
from pathlib import Path
from typing import ClassVar

from ferry_shared import subjects
from ferry_shared.bus.connection import connect
from ferry_shared.bus.consumer import ConsumerSpec, DurableConsumer
from ferry_shared.bus.delivery import Delivery
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.lifecycle import stop_on_signals
from ferry_shared.messages import Command

PROBE_SERVICE = "probe"


class DoProbeWork(Command, frozen=True, kw_only=True, tag="ferry.probe.do_probe_work.v1"):
    """Work for the probe consumer: hold the message ``hold_seconds``, then finish."""

    subject: ClassVar[str] = subjects.command_subject(PROBE_SERVICE, "do_probe_work")
    work_id: str
    hold_seconds: float = 0.0


def probe_spec(*, ack_wait: float, max_deliver: int = 5) -> ConsumerSpec:
    """The durable consumer every probe process shares."""
    return ConsumerSpec(
        service=PROBE_SERVICE,
        stream=subjects.COMMANDS_STREAM,
        durable=subjects.durable_name(PROBE_SERVICE),
        filter_subject=subjects.commands_of(PROBE_SERVICE),
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        fetch_timeout=0.2,
        drain_timeout=1.0,
    )


async def _run(nats_url: str, journal: Path, ack_wait: float) -> None:
    stop = stop_on_signals()
    nc = await connect(
        nats_url,
        name="ferry-probe",
        creds_file=os.environ.get("FERRY_NATS_CREDS_FILE"),
        ca_file=os.environ.get("FERRY_NATS_CA_FILE"),
    )
    js = nc.jetstream()
    await ensure_topology(js)

    async def handle(command: DoProbeWork, delivery: Delivery) -> None:
        with journal.open("a") as out:
            out.write(f"started {command.work_id} {os.getpid()} {delivery.attempt}\n")
        await asyncio.sleep(command.hold_seconds)
        with journal.open("a") as out:
            out.write(f"done {command.work_id} {os.getpid()} {delivery.attempt}\n")

    consumer = DurableConsumer(js, Publisher(js), probe_spec(ack_wait=ack_wait), {DoProbeWork: handle})
    with journal.open("a") as out:
        out.write(f"ready {os.getpid()}\n")
    await consumer.run(stop)
    await nc.drain()


def main() -> None:
    """Run a probe consumer: ``NATS_URL JOURNAL [ACK_WAIT]``."""
    ack_wait = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    asyncio.run(_run(sys.argv[1], Path(sys.argv[2]), ack_wait))


if __name__ == "__main__":
    main()
