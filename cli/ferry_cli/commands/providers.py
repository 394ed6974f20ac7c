"""``ferry provider``: add, update, list, show and delete source and target providers.

``add`` and ``update`` wait until the inventory service reports the provider ready or in
error (``--no-wait``: return at once), and exit 1 with the error when it is in error."""

import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ferry_cli import client
from ferry_cli.follow.http_planner import HttpChangeFeed
from ferry_cli.follow.ports import View
from ferry_cli.follow.provider_wait import DEFAULT_TIMEOUT, LineDisplay, ProviderWait, SpinnerDisplay, status_line
from ferry_cli.output import OutputFormat, OutputOption, emit
from ferry_cli.tables import short_path

app = typer.Typer(help="vSphere sources and Kubernetes or local targets.", no_args_is_help=True)

PASSWORD_ENV = "FERRY_VSPHERE_PASSWORD"


def endpoint(provider: View) -> str:
    """Where a provider is: its URL (a Kubernetes API server, with its context), path, or ``in-cluster``."""
    spec = provider["spec"]
    if spec["type"] == "kubernetes":
        if spec["in_cluster"] or not (spec["url"] or spec["context"]):
            return "in-cluster"
        return (
            f"{spec['url']} ({spec['context']})" if spec["url"] and spec["context"] else spec["url"] or spec["context"]
        )
    return str(spec["url"] or short_path(spec["path"]))


COLUMNS = [
    ("NAME", lambda p: p["spec"]["name"]),
    ("TYPE", lambda p: p["spec"]["type"]),
    ("ENDPOINT", endpoint),
    ("STATUS", lambda p: p["status"]["phase"]),
    ("COUNTS", lambda p: " ".join(f"{k}={v}" for k, v in sorted(p["status"]["counts"].items()))),
    ("MESSAGE", lambda p: p["status"]["message"]),
]

WaitOption = typer.Option("--wait/--no-wait", help="Wait until the provider is ready or in error (exit 1 on error)")
TimeoutOption = typer.Option("--timeout", help="Seconds to wait at most", min=1.0)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Provider name (DNS-1123 label).")],
    type_: Annotated[str, typer.Option("--type", help="vsphere, kubernetes or local")],
    url: Annotated[str, typer.Option(help="vSphere: vCenter/ESXi URL, e.g. https://vcenter.example.com/sdk")] = "",
    username: Annotated[str, typer.Option(help="vSphere user name")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the vSphere password from standard input")
    ] = False,
    ca_bundle: Annotated[Path | None, typer.Option(help="PEM file of CAs that sign the vCenter certificate")] = None,
    thumbprint: Annotated[str, typer.Option(help="SHA-256 thumbprint of the vCenter certificate")] = "",
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify the vCenter certificate (not recommended)")
    ] = False,
    kubeconfig: Annotated[Path | None, typer.Option(help="Kubernetes: kubeconfig file")] = None,
    context: Annotated[str, typer.Option(help="Kubernetes: kubeconfig context (default: its current context)")] = "",
    in_cluster: Annotated[bool, typer.Option("--in-cluster", help="Kubernetes: use the pod's service account")] = False,
    path: Annotated[str, typer.Option(help="local: target directory")] = "",
    wait: Annotated[bool, WaitOption] = True,
    timeout: Annotated[float, TimeoutOption] = DEFAULT_TIMEOUT,
    output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
) -> None:
    """Add a provider and wait until it is ready or in error. The vSphere password comes
    from $FERRY_VSPHERE_PASSWORD, --password-stdin, or a prompt; it is stored apart and never
    shown again."""
    body: dict[str, Any] = {"name": name, "type": type_, "insecure": insecure, "in_cluster": in_cluster}
    body.update({"url": url, "username": username, "thumbprint": thumbprint, "context": context, "path": path})
    if ca_bundle is not None:
        body["ca_bundle"] = _read(ca_bundle)
    if type_ == "vsphere":
        body["password"] = _password(password_stdin)
    if kubeconfig is not None:
        body["kubeconfig"] = _read(kubeconfig)
    planner = client.planner()
    _answer(lambda: planner.post("/providers", body), planner, wait=wait, timeout=timeout, output=output)


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="Provider name.")],
    url: Annotated[str | None, typer.Option(help="vSphere: a new vCenter/ESXi URL")] = None,
    username: Annotated[str | None, typer.Option(help="vSphere: a new user name")] = None,
    password: Annotated[bool, typer.Option("--password", help="vSphere: a new password, asked for")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="vSphere: read a new password from standard input")
    ] = False,
    ca_bundle: Annotated[Path | None, typer.Option(help="vSphere: a new PEM file of CAs")] = None,
    thumbprint: Annotated[str | None, typer.Option(help="vSphere: a new SHA-256 thumbprint to pin")] = None,
    insecure: Annotated[
        bool | None, typer.Option("--insecure/--verify", help="vSphere: skip or do certificate checks")
    ] = None,
    kubeconfig: Annotated[Path | None, typer.Option(help="Kubernetes: a new kubeconfig file")] = None,
    context: Annotated[str | None, typer.Option(help="Kubernetes: another context of the kubeconfig")] = None,
    in_cluster: Annotated[
        bool | None, typer.Option("--in-cluster/--no-in-cluster", help="Kubernetes: the pod's service account")
    ] = None,
    path: Annotated[str | None, typer.Option(help="local: a new target directory")] = None,
    wait: Annotated[bool, WaitOption] = True,
    timeout: Annotated[float, TimeoutOption] = DEFAULT_TIMEOUT,
    output: Annotated[OutputFormat, OutputOption] = OutputFormat.TABLE,
) -> None:
    """Change a provider's settings, password or kubeconfig.

    What is not given stays. The provider reconnects and its plans are validated again. A new password comes from
    --password-stdin, $FERRY_VSPHERE_PASSWORD (with --password) or a prompt (--password).
    While a migration uses the provider only its password, user name and certificate trust
    can change."""
    given = {"url": url, "username": username, "thumbprint": thumbprint, "insecure": insecure,
             "context": context, "in_cluster": in_cluster, "path": path}  # fmt: skip
    body: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    if ca_bundle is not None:
        body["ca_bundle"] = _read(ca_bundle)
    if password or password_stdin:
        body["password"] = _password(password_stdin)
    if kubeconfig is not None:
        body["kubeconfig"] = _read(kubeconfig)
    if not body:
        raise client.CliError("nothing to change: give a setting to change (see `ferry provider update --help`)")
    planner = client.planner()
    _answer(
        lambda: planner.request("PATCH", f"/providers/{name}", body), planner, wait=wait, timeout=timeout, output=output
    )


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


def _answer(
    send: Callable[[], View], planner: client.ApiClient, *, wait: bool, timeout: float, output: OutputFormat
) -> None:
    """Send the add or the change, wait for the provider if asked, print it; exit 1 when it is in error."""
    if not wait:
        emit(send(), output, COLUMNS)
        return
    console = Console(stderr=True)
    display = SpinnerDisplay(console) if console.is_terminal else LineDisplay(lambda line: print(line, file=sys.stderr))
    waiter = ProviderWait(
        feed=HttpChangeFeed(planner), read=lambda name: planner.get(f"/providers/{name}"), display=display,
        timeout=timeout,
    )  # fmt: skip
    try:
        view = waiter.run(send)
    finally:
        display.close()
    emit(view, output, COLUMNS)
    if view["status"]["phase"] == "error":
        name = view["spec"]["name"]
        raise client.CliError(
            f"{status_line(view)}; the provider is kept: fix it with `ferry provider update {name} …` "
            f"or remove it with `ferry provider delete {name}`"
        )


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
