"""Ferry in the benchmark: a NATS server and N transfer worker processes copy one disk.

For each copy: start nats-server (JetStream on a temporary store), start an inventory
holding the vCenter password (it issues the workers' one-time clone tickets,
:mod:`ferry_peers.inventory_desk`; set-up, not timed), start ``workers`` processes of
``python -m ferry_transfer`` (each through :class:`~line_rate_bench.processes.Child`, so
its peak RSS comes from ``wait4`` of the worker itself), publish one ``CopyDisk`` exactly
as the planner does, and time it until ``DiskCopied`` arrives. The workers are then
stopped with SIGTERM and their peak RSS collected.
"""

import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from ferry_peers.inventory_desk import inventory_desk
from ferry_peers.nats_server import NatsServer, start_nats_server
from ferry_peers.ports import free_port
from ferry_peers.security import LocalSecurity
from ferry_shared.bus.connection import connect
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.messages import MessageFailed, decode_as
from ferry_shared.migrations import CopyDisk, DiskCopied, SinkLocation, SourceDisk, step_fields
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus
from line_rate_bench.ferry_slot import FerryCase
from line_rate_bench.processes import Child
from line_rate_bench.results import RunResult

PROVIDER = "bench-vcenter"
READY_TIMEOUT = 60.0
_runs = itertools.count(1)


class FerryCopyError(RuntimeError):
    """The workers answered with MessageFailed, or never answered."""


def run(workers: int, case: FerryCase) -> RunResult:
    """Copy ``case.source`` to ``case.target`` with ``workers`` transfer worker processes."""
    return run_from(None, workers, case)


def run_from(tree: Path | None, workers: int, case: FerryCase) -> RunResult:
    """:func:`run` with the workers' ``ferry_transfer`` and ``ferry_shared`` taken from the
    checkout ``tree`` (an older commit, for an A/B in the same runs), or this one's if None."""
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as scratch:
        return asyncio.run(_run(workers, case, Path(scratch), tree))


@dataclass(frozen=True)
class _Worker:
    child: Child
    port: int


async def _run(workers: int, case: FerryCase, scratch: Path, tree: Path | None) -> RunResult:
    security = LocalSecurity.create(scratch / "security")
    nats_server = start_nats_server(scratch / "nats", security=security)
    started: list[_Worker] = []
    try:
        connection = await connect(nats_server.url, name="ferry-bench", **nats_server.connect_options())
        try:
            js = connection.jetstream()
            await ensure_topology(js)
            bus = Bus(nc=connection, js=js, publisher=Publisher(js))
            async with inventory_desk(bus, nats_server, _provider(case), case.password, scratch / "inventory"):
                started = [_start_worker(index, nats_server, scratch, tree) for index in range(workers)]
                for worker in started:
                    await _wait_ready(worker)
                seconds = await _copy(connection, js, case)
        finally:
            await connection.close()
    finally:
        exits = [worker.child.stop(grace=30.0) for worker in started]
        nats_server.stop()
    # MiB/s is reported per byte of the disk, as for the peers (a CBT copy reads less).
    return RunResult(bytes_copied=case.source.capacity, seconds=seconds, peak_rss=tuple(e.peak_rss for e in exits))


def _start_worker(index: int, nats_server: NatsServer, scratch: Path, tree: Path | None) -> _Worker:
    port = free_port()
    # PYTHONPATH comes before the virtualenv's editable installs, so the tree's packages win
    code = {} if tree is None else {"PYTHONPATH": f"{tree / 'services' / 'transfer'}{os.pathsep}{tree / 'shared'}"}
    env = {
        **code,
        **os.environ,
        **nats_server.security.service_env("transfer"),
        **nats_server.service_env("transfer"),
        "FERRY_HTTP_HOST": "127.0.0.1",
        "FERRY_HTTP_PORT": str(port),
        "FERRY_LOG_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "ferry_transfer"]
    return _Worker(Child(f"transfer-{index}", argv, scratch / f"transfer-{index}.log", env=env), port)


async def _wait_ready(worker: _Worker) -> None:
    """Until the worker's /readyz answers 200 (set-up, not part of the timed copy)."""
    deadline = time.monotonic() + READY_TIMEOUT
    async with httpx.AsyncClient(timeout=1.0) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{worker.port}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    child = worker.child
    raise FerryCopyError(f"{child.name} was not ready within {READY_TIMEOUT:.0f}s: {child.log_tail()}")


def _provider(case: FerryCase) -> ProviderSpec:
    return ProviderSpec(
        name=PROVIDER, type="vsphere", url=case.sdk_url, username=case.username, thumbprint=case.thumbprint_sha256
    )


async def _copy(connection: Client, js: JetStreamContext, case: FerryCase) -> float:
    migration = f"bench-{next(_runs)}"
    source = case.source
    datacenter = parse_qs(urlsplit(source.url).query)["dcPath"][0]
    command = CopyDisk(
        **step_fields(migration, source.vm_moref, "copy_disk", source.disk_key),
        source=_provider(case),
        disk=SourceDisk(
            key=source.disk_key,
            file_name=source.backing_file,
            datacenter=datacenter,
            capacity_bytes=source.capacity,
            cbt=source.change_id is not None,
        ),
        sink=SinkLocation(disk_key=source.disk_key, kind="file", size_bytes=source.capacity, path=str(case.target)),
    )
    async with _answers(connection) as answers:
        started = time.monotonic()
        await Publisher(js).publish(command)
        answer = await asyncio.wait_for(_first_answer(answers, migration), timeout=case.timeout)
        seconds = time.monotonic() - started
    if isinstance(answer, MessageFailed):
        raise FerryCopyError(f"{answer.failed_type} failed: {answer.error_code}: {answer.reason}")
    return seconds


@contextlib.asynccontextmanager
async def _answers(connection: Client) -> AsyncIterator["asyncio.Queue[Msg]"]:
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        await queue.put(msg)

    subscriptions = [
        await connection.subscribe(DiskCopied.subject, cb=collect),
        await connection.subscribe(MessageFailed.subject, cb=collect),
    ]
    try:
        yield queue
    finally:
        for subscription in subscriptions:
            await subscription.unsubscribe()


async def _first_answer(answers: "asyncio.Queue[Msg]", migration: str) -> DiskCopied | MessageFailed:
    while True:
        msg = await answers.get()
        if msg.subject == DiskCopied.subject:
            copied = decode_as(msg.data, DiskCopied)
            if copied.migration == migration:
                return copied
        else:
            failed = decode_as(msg.data, MessageFailed)
            if failed.about is not None and failed.about.migration == migration:
                return failed
