"""``ferry map``: NetworkMaps and StorageMaps.

Pairs are written ``SOURCE=DESTINATION``:
network ``"VM Network=pod"``, ``"DC0_DVPG0=multus:ns/nad"``, ``"Backup=ignored"``;
storage ``"LocalDS_0=standard"`` or ``"LocalDS_0=standard:Block:ReadWriteOnce"``.
"""

from typing import Annotated, Any

import typer

from ferry_cli import client
from ferry_cli.output import Column, OutputFormat, OutputOption, emit

app = typer.Typer(help="Network and storage maps.", no_args_is_help=True)
network_app = typer.Typer(help="NetworkMaps: source network → pod | multus:NS/NAD | ignored.", no_args_is_help=True)
storage_app = typer.Typer(help="StorageMaps: datastore → StorageClass[:volumeMode[:accessMode]].", no_args_is_help=True)
app.add_typer(network_app, name="network")
app.add_typer(storage_app, name="storage")

PairOption = Annotated[list[str], typer.Option("--pair", help="SOURCE=DESTINATION (repeat)")]


def _split(pair: str) -> tuple[str, str]:
    source, sep, destination = pair.rpartition("=")
    if not sep or not source or not destination:
        raise client.CliError(f"pair '{pair}' must look like SOURCE=DESTINATION")
    return source, destination


def network_pair(pair: str) -> dict[str, str]:
    """``"VM Network=pod"`` → the API's pair object."""
    source, destination = _split(pair)
    if destination in ("pod", "ignored"):
        return {"source": source, "destination": destination}
    kind, _, nad = destination.partition(":")
    if kind != "multus" or "/" not in nad:
        raise client.CliError(f"network destination '{destination}' must be pod, ignored or multus:NAMESPACE/NAME")
    return {"source": source, "destination": "multus", "nad": nad}


def storage_pair(pair: str) -> dict[str, str]:
    """``"LocalDS_0=standard:Block:ReadWriteOnce"`` → the API's pair object."""
    source, destination = _split(pair)
    parts = destination.split(":")
    if len(parts) > 3 or not parts[0]:
        raise client.CliError(f"storage destination '{destination}' must be CLASS[:VOLUME_MODE[:ACCESS_MODE]]")
    fields = ("storage_class", "volume_mode", "access_mode")
    return {"source": source, **dict(zip(fields, parts, strict=False))}


def _map_columns() -> list[Column]:
    return [
        ("NAME", lambda m: m["map"]["name"]),
        ("SOURCE", lambda m: m["map"]["source_provider"]),
        ("TARGET", lambda m: m["map"]["target_provider"]),
        ("PAIRS", lambda m: [_describe(p) for p in m["map"]["pairs"]]),
        ("READY", lambda m: m["status"]["ready"]),
        ("PROBLEMS", lambda m: [c["message"] for c in m["status"]["conditions"]]),
    ]


def _describe(pair: dict[str, Any]) -> str:
    if "destination" in pair:
        return f"{pair['source']}→{pair['nad'] or pair['destination']}"
    modes = ":".join(x for x in (pair["volume_mode"], pair["access_mode"]) if x)
    return f"{pair['source']}→{pair['storage_class']}{':' + modes if modes else ''}"


def _register(sub: typer.Typer, path: str, parse: Any) -> None:
    @sub.command("create")
    def create(
        name: str,
        source: Annotated[str, typer.Option(help="Source provider")],
        target: Annotated[str, typer.Option(help="Target provider")],
        pair: PairOption,
        output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
    ) -> None:
        """Create a map from --pair SOURCE=DESTINATION options."""
        body = {"name": name, "source_provider": source, "target_provider": target, "pairs": [parse(p) for p in pair]}
        emit(client.planner().post(f"/{path}", body), output, _map_columns())

    @sub.command("list")
    def list_(output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE) -> None:
        """List maps and whether every reference in them exists."""
        emit(client.planner().get(f"/{path}"), output, _map_columns())

    @sub.command("show")
    def show(name: str, output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE) -> None:
        """Show one map and its problems."""
        emit(client.planner().get(f"/{path}/{name}"), output, _map_columns())

    @sub.command("delete")
    def delete(name: str) -> None:
        """Delete a map."""
        client.planner().delete(f"/{path}/{name}")
        typer.echo(f"{path[:-1]} {name} deleted")


_register(network_app, "networkmaps", network_pair)
_register(storage_app, "storagemaps", storage_pair)
