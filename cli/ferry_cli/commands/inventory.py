"""``ferry inventory``: list what a provider has (VMs, networks, datastores, …)."""

from typing import Annotated, Any

import typer

from ferry_cli import client
from ferry_cli.client import AnsweredError, CliError
from ferry_cli.output import Column, OutputFormat, OutputOption, emit
from ferry_shared.providers import PROVIDER_NOT_READY

app = typer.Typer(help="Query a provider's inventory.", no_args_is_help=True)

ProviderArg = Annotated[str, typer.Argument(help="Provider name")]


def _gib(value: int) -> str:
    return f"{value / 2**30:.1f}"


VM_COLUMNS: list[Column] = [
    ("NAME", lambda v: v["name"]),
    ("ID", lambda v: v["id"]),
    ("POWER", lambda v: v["power_state"]),
    ("CPU", lambda v: v["cpu_sockets"] * v["cores_per_socket"]),
    ("MEMORY MiB", lambda v: v["memory_mib"]),
    ("FIRMWARE", lambda v: v["firmware"] + (" +secureboot" if v["secure_boot"] else "")),
    ("DISKS GiB", lambda v: [_gib(d["capacity_bytes"]) for d in v["disks"]]),
    ("NETWORKS", lambda v: [n["network_name"] for n in v["nics"]]),
    ("HOST", lambda v: v["host_name"]),
]

KIND_COLUMNS: dict[str, list[Column]] = {
    "networks": [("NAME", lambda r: r["name"]), ("ID", lambda r: r["id"]), ("KIND", lambda r: r["kind"]),
                 ("SWITCH", lambda r: r["switch_name"])],
    "datastores": [("NAME", lambda r: r["name"]), ("ID", lambda r: r["id"]), ("TYPE", lambda r: r["type"]),
                   ("CAPACITY GiB", lambda r: _gib(r["capacity_bytes"])),
                   ("FREE GiB", lambda r: _gib(r["free_bytes"]))],
    "hosts": [("NAME", lambda r: r["name"]), ("ID", lambda r: r["id"]), ("CLUSTER", lambda r: r["cluster_name"]),
              ("MAINTENANCE", lambda r: r["maintenance_mode"])],
    "namespaces": [("NAME", lambda r: r["name"])],
    "storageclasses": [("NAME", lambda r: r["name"]), ("PROVISIONER", lambda r: r["provisioner"]),
                       ("DEFAULT", lambda r: r["is_default"]), ("VOLUME MODES", lambda r: r["volume_modes"]),
                       ("ACCESS MODES", lambda r: r["access_modes"])],
    "nads": [("NAMESPACE", lambda r: r["namespace"]), ("NAME", lambda r: r["name"])],
}  # fmt: skip


def _query(provider: str, path: str, **params: Any) -> Any:
    """``path`` of the inventory API; a provider that is not ready is one line saying its
    state and error and what to do, exit 1."""
    try:
        return client.inventory().get(path, **params)
    except AnsweredError as error:
        if error.reason != PROVIDER_NOT_READY:
            raise
        raise CliError(
            f"{error.message}; `ferry provider show {provider}` shows its status, fix what it says and query again"
        ) from None


@app.command("vms")
def vms(
    provider: ProviderArg,
    name: Annotated[str | None, typer.Option(help="Only VMs whose name contains this")] = None,
    power_state: Annotated[str | None, typer.Option(help="poweredOn, poweredOff or suspended")] = None,
    host: Annotated[str | None, typer.Option(help="Host name or id")] = None,
    datastore: Annotated[str | None, typer.Option(help="Datastore name or id")] = None,
    network: Annotated[str | None, typer.Option(help="Network name or id")] = None,
    output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
) -> None:
    """List a provider's VMs."""
    result = _query(
        provider,
        f"/providers/{provider}/vms",
        name=name,
        power_state=power_state,
        host=host,
        datastore=datastore,
        network=network,
    )
    emit(result["items"], output, VM_COLUMNS, title=f"{result['total']} VMs")


@app.command("vm")
def vm(provider: ProviderArg, vm_ref: str, output: Annotated[OutputFormat, OutputOption] = OutputFormat.YAML) -> None:
    """Show one VM by id or name.

    YAML by default: everything the inventory knows about it."""
    emit(_query(provider, f"/providers/{provider}/vms/{vm_ref}"), output, VM_COLUMNS)


def _lister(kind: str) -> Any:
    def command(provider: ProviderArg, output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE) -> None:
        result = _query(provider, f"/providers/{provider}/{kind}")
        emit(result["items"], output, KIND_COLUMNS[kind], title=f"{result['total']} {kind}")

    command.__doc__ = f"List a provider's {kind}."
    return command


for _kind in KIND_COLUMNS:
    app.command(_kind)(_lister(_kind))
