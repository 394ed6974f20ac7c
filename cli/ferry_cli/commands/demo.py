"""``ferry demo``: start a local Ferry stack on embedded defaults, report its health, and
migrate the simulated vCenter's VMs into a local target directory."""

import asyncio
import contextlib
import shutil
import signal
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.text import Text

from ferry_cli.client import CliError, token_file
from ferry_cli.commands.demo_migrate import migrate_plan
from ferry_cli.commands.demo_plan import PLAN, plan_everything
from ferry_cli.follow.state import EXIT_FAILED, EXIT_INTERRUPTED, exit_code
from ferry_cli.local.demo_model import demo_model
from ferry_cli.local.stack import DEMO_PORTS, LocalStack, local_stack
from ferry_cli.tables import FittedTable, short_path
from ferry_peers.binaries import PeerNotBuiltError
from ferry_peers.nats_server import NatsServer
from ferry_peers.processes import ProcessFailedError
from ferry_shared import subjects
from ferry_shared.bus.connection import connect

DEFAULT_WORK_DIR = Path("var/demo")


async def _stream_summary(nats: NatsServer) -> list[tuple[str, int]]:
    nc = await connect(nats.url, name="ferry-demo", **nats.connect_options())
    try:
        js = nc.jetstream()
        infos = [await js.stream_info(name) for name in (subjects.COMMANDS_STREAM, subjects.EVENTS_STREAM)]
        return [(info.config.name or "?", info.state.messages) for info in infos]
    finally:
        await nc.drain()


def _report(stack: LocalStack, console: Console, started: float) -> None:
    rows = [
        ["nats-server (JetStream)", stack.nats.url, "running"],
        ["vCenter simulator", stack.vcsim.sdk_url, f"running, TLS {stack.vcsim.thumbprint_sha256[:23]}…"],
    ]
    for service in stack.services.values():
        ready = httpx.get(f"{service.http_url}/readyz", timeout=2.0).json()
        rows.append([f"ferry {service.name}", service.http_url, str(ready["status"])])
    for name, messages in asyncio.run(_stream_summary(stack.nats)):
        rows.append([f"stream {name}", stack.nats.url, f"{messages} messages"])
    console.print(stack_table(rows))
    logs = short_path(stack.work_dir / "logs")
    console.print(f"stack ready in {time.monotonic() - started:.1f}s; logs in {logs}", markup=False)
    console.print(
        "API token (mode 0600, read by the ferry CLI; FERRY_TOKEN overrides it): "
        f"{short_path(stack.security.api_token_file)}"
    )


def stack_table(rows: list[list[str]]) -> FittedTable:
    """The local stack's components: name, address and status."""
    return FittedTable(("component", "address", "status"), rows, "Ferry local stack")


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM unwind the stack's context (every child is stopped), also when
    the demo was started in the background, where SIGINT comes ignored."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _run(stack: LocalStack, console: Console) -> tuple[int, str]:
    """Plan and migrate; the exit code and the migration's name ("" when none started)."""
    plan = plan_everything(stack, console)
    if not plan["status"]["ready"]:
        console.print(f"[red]plan {PLAN} is not Ready, so nothing is migrated; see its concerns above[/red]")
        return EXIT_FAILED, ""
    view = migrate_plan(stack, PLAN, console)
    return exit_code(view), str(view["name"])


def demo(
    work_dir: Annotated[Path, typer.Option(help="Folder for the stack's state, logs and target.")] = DEFAULT_WORK_DIR,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Keep the stack up until Ctrl-C.")] = False,
) -> None:
    """Migrate the simulated vCenter's VMs to a local directory.

    Starts NATS, the simulated vCenter and Ferry's four services locally, connects the
    vCenter and a local target, plans every VM and migrates them with progress bars."""
    console = Console()
    started = time.monotonic()
    _stop_on_signals()
    shutil.rmtree(work_dir, ignore_errors=True)  # every demo starts from empty state
    try:
        with local_stack(
            work_dir.resolve(), ports=DEMO_PORTS, model=demo_model(), api_token_file=token_file()
        ) as stack:
            _report(stack, console, started)
            code, migration = _run(stack, console)
            if keep_running:
                if migration:
                    console.print(f"inspect it: ferry migration show {migration}  (also: ferry migration list)")
                console.print("the stack stays up; press Ctrl-C to stop it")
                with contextlib.suppress(KeyboardInterrupt):
                    stack.services["planner"].process.process.wait()
            elif migration:
                console.print(
                    f"the stack stops now; `ferry demo --keep-running` keeps it up for "
                    f"`ferry migration show {migration}`"
                )
    except KeyboardInterrupt:
        console.print("demo interrupted; the stack was stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (PeerNotBuiltError, ProcessFailedError, CliError) as error:
        console.print(Text.assemble(("ferry demo failed: ", "red"), str(error)))
        raise typer.Exit(1) from error
    raise typer.Exit(code)
