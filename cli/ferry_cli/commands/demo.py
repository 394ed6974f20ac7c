"""``ferry demo``: start a local Ferry stack on embedded defaults and report its health."""

import asyncio
import contextlib
import shutil
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from ferry_cli.client import CliError
from ferry_cli.commands.demo_plan import plan_everything
from ferry_cli.local.binaries import PeerNotBuiltError
from ferry_cli.local.processes import ProcessFailedError
from ferry_cli.local.stack import DEMO_PORTS, LocalStack, local_stack
from ferry_shared import subjects
from ferry_shared.bus.connection import connect

DEFAULT_WORK_DIR = Path("var/demo")


async def _stream_summary(nats_url: str) -> list[tuple[str, int]]:
    nc = await connect(nats_url, name="ferry-demo")
    try:
        js = nc.jetstream()
        infos = [await js.stream_info(name) for name in (subjects.COMMANDS_STREAM, subjects.EVENTS_STREAM)]
        return [(info.config.name or "?", info.state.messages) for info in infos]
    finally:
        await nc.drain()


def _report(stack: LocalStack, console: Console, started: float) -> None:
    table = Table(title="Ferry local stack")
    table.add_column("component")
    table.add_column("address")
    table.add_column("status")
    table.add_row("nats-server (JetStream)", stack.nats.url, "running")
    table.add_row("vCenter simulator", stack.vcsim.sdk_url, f"running, TLS {stack.vcsim.thumbprint_sha256[:23]}…")
    for service in stack.services.values():
        ready = httpx.get(f"{service.http_url}/readyz", timeout=2.0).json()
        table.add_row(f"ferry {service.name}", service.http_url, str(ready["status"]))
    for name, messages in asyncio.run(_stream_summary(stack.nats.url)):
        table.add_row(f"stream {name}", stack.nats.url, f"{messages} messages")
    console.print(table)
    console.print(f"stack ready in {time.monotonic() - started:.1f}s; logs in {stack.work_dir / 'logs'}")


def demo(
    work_dir: Annotated[Path, typer.Option(help="Folder for the stack's state and logs.")] = DEFAULT_WORK_DIR,
    keep_running: Annotated[bool, typer.Option(help="Keep the stack up until Ctrl-C.")] = False,
) -> None:
    """Start NATS, the simulated vCenter and Ferry's four services locally, report their
    health, then connect the vCenter and a local target and plan every VM."""
    console = Console()
    started = time.monotonic()
    shutil.rmtree(work_dir, ignore_errors=True)  # every demo starts from empty state
    try:
        with local_stack(work_dir.resolve(), ports=DEMO_PORTS) as stack:
            _report(stack, console, started)
            plan_everything(stack, work_dir.resolve() / "target", console)
            if keep_running:
                console.print("press Ctrl-C to stop")
                with contextlib.suppress(KeyboardInterrupt):
                    stack.services["planner"].process.process.wait()
    except (PeerNotBuiltError, ProcessFailedError, CliError) as error:
        console.print(f"[red]ferry demo could not start the stack:[/red] {error}")
        raise typer.Exit(1) from error
