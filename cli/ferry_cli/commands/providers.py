"""``ferry provider``: add, list, show and delete source and target providers."""

import getpass
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ferry_cli import client
from ferry_cli.output import OutputFormat, OutputOption, emit

app = typer.Typer(help="Source (vSphere) and target (Kubernetes, local directory) providers.", no_args_is_help=True)

PASSWORD_ENV = "FERRY_VSPHERE_PASSWORD"

COLUMNS = [
    ("NAME", lambda p: p["spec"]["name"]),
    ("TYPE", lambda p: p["spec"]["type"]),
    ("ENDPOINT", lambda p: p["spec"]["url"] or p["spec"]["path"] or p["spec"]["context"] or "in-cluster"),
    ("STATUS", lambda p: p["status"]["phase"]),
    ("COUNTS", lambda p: " ".join(f"{k}={v}" for k, v in sorted(p["status"]["counts"].items()))),
    ("MESSAGE", lambda p: p["status"]["message"]),
]


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Provider name (DNS-1123 label).")],
    type_: Annotated[str, typer.Option("--type", help="vsphere, kubernetes or local")],
    url: Annotated[str, typer.Option(help="vSphere: vCenter/ESXi URL, e.g. https://vcenter.example.com/sdk")] = "",
    username: Annotated[str, typer.Option(help="vSphere user name")] = "",
    password_stdin: Annotated[bool, typer.Option(help="Read the vSphere password from standard input")] = False,
    ca_bundle: Annotated[Path | None, typer.Option(help="PEM file of CAs that sign the vCenter certificate")] = None,
    thumbprint: Annotated[str, typer.Option(help="SHA-256 thumbprint of the vCenter certificate")] = "",
    insecure: Annotated[bool, typer.Option(help="Do not verify the vCenter certificate (not recommended)")] = False,
    kubeconfig: Annotated[Path | None, typer.Option(help="Kubernetes: kubeconfig file")] = None,
    context: Annotated[str, typer.Option(help="Kubernetes: kubeconfig context")] = "",
    in_cluster: Annotated[bool, typer.Option(help="Kubernetes: use the pod's service account")] = False,
    path: Annotated[str, typer.Option(help="local: target directory")] = "",
    output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
) -> None:
    """Add a provider. The vSphere password comes from $FERRY_VSPHERE_PASSWORD,
    --password-stdin, or a prompt; it is stored apart and never shown again."""
    body: dict[str, Any] = {"name": name, "type": type_, "insecure": insecure, "in_cluster": in_cluster}
    body.update({"url": url, "username": username, "thumbprint": thumbprint, "context": context, "path": path})
    if ca_bundle is not None:
        body["ca_bundle"] = _read(ca_bundle)
    if type_ == "vsphere":
        body["password"] = _password(password_stdin)
    if kubeconfig is not None:
        body["kubeconfig"] = _read(kubeconfig)
    emit(client.planner().post("/providers", body), output, COLUMNS)


@app.command("list")
def list_(output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE) -> None:
    """List providers with their connection status."""
    emit(client.planner().get("/providers"), output, COLUMNS)


@app.command("show")
def show(name: str, output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE) -> None:
    """Show one provider and its status."""
    emit(client.planner().get(f"/providers/{name}"), output, COLUMNS)


@app.command("delete")
def delete(name: str) -> None:
    """Delete a provider, its stored credentials and its inventory."""
    client.planner().delete(f"/providers/{name}")
    typer.echo(f"provider {name} deleted")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise client.CliError(f"cannot read {path}: {error.strerror}") from error


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return typer.get_text_stream("stdin").readline().rstrip("\n")
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    return getpass.getpass("vSphere password: ")
