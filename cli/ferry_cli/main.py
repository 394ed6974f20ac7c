"""The ``ferry`` command: one client for every Ferry service."""

import typer

from ferry_cli.commands.demo import demo

app = typer.Typer(help="Ferry moves virtual machines from VMware vSphere into KubeVirt.", no_args_is_help=True)
app.command()(demo)


@app.callback()
def main() -> None:
    """Ferry moves virtual machines from VMware vSphere into KubeVirt."""
