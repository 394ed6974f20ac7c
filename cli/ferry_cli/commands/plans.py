"""``ferry plan``: create plans and see whether they can run, with each VM's concerns."""

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from ferry_cli import client
from ferry_cli.client import CliError
from ferry_cli.output import OutputFormat, OutputOption, emit
from ferry_cli.tables import FittedTable

app = typer.Typer(help="Migration plans and their validation.", no_args_is_help=True)

SHOWN_CRITICAL = 5
"""How many Critical conditions and concerns the not-Ready line of ``plan create`` names."""

PLAN_COLUMNS = [
    ("NAME", lambda p: p["plan"]["name"]),
    ("SOURCE", lambda p: p["plan"]["source_provider"]),
    ("TARGET", lambda p: f"{p['plan']['target_provider']}/{p['plan']['target_namespace']}"),
    ("VMS", lambda p: len(p["plan"]["vms"])),
    ("READY", lambda p: p["status"]["ready"]),
    ("CRITICAL", lambda p: _count(p, "Critical")),
    ("WARNINGS", lambda p: _count(p, "Warning")),
]


def _count(plan: dict[str, Any], category: str) -> int:
    conditions = sum(1 for c in plan["status"]["conditions"] if c["category"] == category)
    concerns = sum(1 for vm in plan["status"]["vms"] for c in vm["concerns"] if c["category"] == category)
    return conditions + concerns


def _vm(spec: str) -> dict[str, str]:
    ref, _, target_name = spec.partition(":")
    return {"ref": ref, "target_name": target_name}


@app.command("create")
def create(
    name: str,
    source: Annotated[str, typer.Option(help="Source provider")],
    target: Annotated[str, typer.Option(help="Target provider")],
    network_map: Annotated[str, typer.Option(help="NetworkMap name")],
    storage_map: Annotated[str, typer.Option(help="StorageMap name")],
    namespace: Annotated[str, typer.Option(help="Target namespace")],
    vm: Annotated[list[str], typer.Option("--vm", help="VM name or id, optionally NAME:TARGET_NAME (repeat)")],
    output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
) -> None:
    """Create a cold-migration plan and show its validation.

    Exits 1 when the plan is not Ready (it is stored all the same)."""
    body = {
        "name": name,
        "source_provider": source,
        "target_provider": target,
        "network_map": network_map,
        "storage_map": storage_map,
        "target_namespace": namespace,
        "vms": [_vm(v) for v in vm],
    }
    plan = client.planner().post("/plans", body)
    _show(plan, output)
    if not plan["status"]["ready"]:
        raise CliError(not_ready_line(plan))


def _critical(plan: dict[str, Any]) -> list[str]:
    """The plan's Critical conditions and VM concerns, one short phrase each."""
    found = [c["type"] for c in plan["status"]["conditions"] if c["category"] == "Critical"]
    for vm in plan["status"]["vms"]:
        found += [f"{vm['name'] or vm['ref']}: {c['label']}" for c in vm["concerns"] if c["category"] == "Critical"]
    return found


def not_ready_line(plan: dict[str, Any]) -> str:
    """One line for a stored plan that is not Ready: what blocks it, how to see and fix it."""
    name = plan["plan"]["name"]
    critical = _critical(plan)
    listed = "; ".join(critical[:SHOWN_CRITICAL])
    if len(critical) > SHOWN_CRITICAL:
        listed += f"; and {len(critical) - SHOWN_CRITICAL} more"
    return (
        f"plan '{name}' is stored but not Ready, {len(critical)} Critical ({listed}); fix those (maps, inventory, "
        f"target) and it revalidates by itself, `ferry plan show {name}` shows it again, or `ferry plan delete "
        f"{name}` and create it again to change its VMs"
    )


@app.command("list")
def list_(output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE) -> None:
    """List plans and whether each is Ready."""
    emit(client.planner().get("/plans"), output, PLAN_COLUMNS)


@app.command("show")
def show(name: str, output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE) -> None:
    """Show a plan's conditions and every VM's concerns."""
    _show(client.planner().get(f"/plans/{name}"), output)


@app.command("delete")
def delete(name: str) -> None:
    """Delete a plan."""
    client.planner().delete(f"/plans/{name}")
    typer.echo(f"plan {name} deleted")


def _show(plan: dict[str, Any], output: OutputFormat) -> None:
    if output is not OutputFormat.TABLE:
        emit(plan, output)
        return
    console = Console()
    emit(plan, output, PLAN_COLUMNS)
    for condition in plan["status"]["conditions"]:
        line = Text(condition["category"], style="bold")
        line.append(f" {condition['type']}: {condition['message']}")
        console.print(line)
    console.print(vm_concerns_table(plan))


def vm_concerns_table(plan: dict[str, Any]) -> FittedTable:
    """A row per concern of each VM of ``plan`` (``none`` for a VM without any)."""
    rows: list[list[str]] = []
    for vm in plan["status"]["vms"]:
        concerns = vm["concerns"] or [{"category": "", "label": "none", "assessment": ""}]
        for concern in concerns:
            rows.append([
                vm["name"] or vm["ref"], vm["id"], vm["target_name"], concern["category"], concern["label"],
                concern["assessment"],
            ])  # fmt: skip
    return FittedTable(("VM", "ID", "TARGET NAME", "CATEGORY", "CONCERN", "ASSESSMENT"), rows, "VMs")
