"""``ferry migrate`` and ``ferry migration list|show|cancel``: run plans and follow,
inspect or cancel their migrations."""

from typing import Annotated, Any

import typer
from rich.console import Console

from ferry_cli import client
from ferry_cli.follow import formats
from ferry_cli.follow.http_planner import HttpChangeFeed, HttpMigrationsApi
from ferry_cli.follow.ports import MigrationsApi, View
from ferry_cli.follow.run import FollowFormat, follow_migration
from ferry_cli.follow.state import EXIT_CODES_HELP, exit_code, seconds_between
from ferry_cli.follow.summary import summary_line, vm_table
from ferry_cli.output import Column, OutputFormat, OutputOption, emit

app = typer.Typer(help="Migrations: the runs of plans.", no_args_is_help=True)

FollowOutput = Annotated[FollowFormat, typer.Option("--output", "-o", help="table (live bars) or json (JSON lines)")]

COLUMNS: list[Column] = [
    ("NAME", lambda m: m["name"]),
    ("PLAN", lambda m: m["plan"]),
    ("PHASE", lambda m: m["phase"]),
    ("VMS", lambda m: _counts(m["counts"])),
    ("STARTED", lambda m: m["started_at"] or m["created_at"]),
    ("DURATION", lambda m: formats.duration(seconds_between(m["started_at"], m["completed_at"]))),
]


def _counts(counts: dict[str, int]) -> str:
    done = " ".join(f"{k}={v}" for k, v in counts.items() if k != "total" and v)
    return f"{counts.get('total', 0)}: {done}" if done else str(counts.get("total", 0))


def _follow(start: Any, output: FollowFormat) -> View:
    planner = client.planner()
    return follow_migration(start, HttpChangeFeed(planner), HttpMigrationsApi(planner), output, Console())


def migrate(
    plan: Annotated[str, typer.Argument(help="The plan to run.")],
    name: Annotated[str | None, typer.Option(help="Migration name (default: <plan>-<n>).")] = None,
    output: FollowOutput = FollowFormat.TABLE,
    detach: Annotated[bool, typer.Option("--detach", help="Start the migration, print its name and return.")] = False,
) -> None:
    """Run PLAN and follow it live.

    Starts a migration of PLAN and follows it: a line per VM, a bar per disk, then each
    VM's result. Ctrl-C stops following; the migration goes on.

    --output json: one JSON object per line, each change (the planner's event payloads), then the final migration.

    EXIT_CODES
    """
    if detach:
        view = HttpMigrationsApi(client.planner()).create(plan, name)
        if output is FollowFormat.JSON:
            emit(view, OutputFormat.JSON)
        else:
            typer.echo(view["name"])
        return

    def start(api: MigrationsApi) -> View:
        return api.create(plan, name)

    raise typer.Exit(exit_code(_follow(start, output)))


migrate.__doc__ = (migrate.__doc__ or "").replace("EXIT_CODES", EXIT_CODES_HELP)


@app.command("list")
def list_(
    plan: Annotated[str | None, typer.Option(help="Only this plan's migrations.")] = None,
    output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
) -> None:
    """List migrations, newest first."""
    emit(client.planner().get("/migrations", plan=plan), output, COLUMNS)


@app.command("show")
def show(
    name: str,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow it live, as `ferry migrate` does, until it ends.")
    ] = False,
    output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
) -> None:
    """Show a migration's VMs and their results.

    Every VM's phase, duration, disks, and location or reason.

    With --watch, follow it live (table) or as JSON lines (json) and exit as `ferry migrate` does.

    EXIT_CODES
    """
    if watch:
        if output is OutputFormat.YAML:
            raise client.CliError("--watch writes a live view (table) or JSON lines (json), not yaml")

        def start(api: MigrationsApi) -> View:
            return api.get(name)

        raise typer.Exit(exit_code(_follow(start, FollowFormat(output.value))))
    _show(client.planner().get(f"/migrations/{name}"), output)


show.__doc__ = (show.__doc__ or "").replace("EXIT_CODES", EXIT_CODES_HELP)


@app.command("cancel")
def cancel(
    name: str,
    vm: Annotated[list[str] | None, typer.Option("--vm", help="VM name or id to cancel (repeat); default: all")] = None,
    output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
) -> None:
    """Cancel a migration's unfinished VMs (or only the --vm ones). Finished VMs stay as
    they are; canceled ones are cleaned up on the target and their source power restored."""
    view = client.planner().post(f"/migrations/{name}/cancel", {"vms": vm or []})
    _show(view, output)
    if output is OutputFormat.TABLE:
        which = ", ".join(vm) if vm else "every unfinished VM"
        typer.echo(f"cancel requested for {which}; follow it with `ferry migration show {name} --watch`")


def _show(view: View, output: OutputFormat) -> None:
    if output is not OutputFormat.TABLE:
        emit(view, output)
        return
    console = Console()
    console.print(vm_table(view))
    console.print(summary_line(view))
