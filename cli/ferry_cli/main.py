"""The ``ferry`` command: one client for every Ferry service."""

import typer
from rich.console import Console
from rich.text import Text

from ferry_cli.client import CliError
from ferry_cli.commands import inventory, maps, migrations, plans, providers
from ferry_cli.commands.demo import demo

# Click's plain help, not rich's panels: at 80 columns the panels leave an option's help a
# third of the line (and rich markup would eat ``[…]`` in help texts such as StorageMaps').
typer_app = typer.Typer(
    help="Ferry moves virtual machines from VMware vSphere into KubeVirt.", no_args_is_help=True, rich_markup_mode=None
)
typer_app.command()(demo)
typer_app.command()(migrations.migrate)
typer_app.add_typer(providers.app, name="provider")
typer_app.add_typer(inventory.app, name="inventory")
typer_app.add_typer(maps.app, name="map")
typer_app.add_typer(plans.app, name="plan")
typer_app.add_typer(migrations.app, name="migration")


def app() -> None:
    """Run the CLI; Ferry's own errors print as one line and exit 1 (no traceback)."""
    try:
        typer_app()
    except CliError as error:
        said = Text("error:", style="red").append(f" {error}")  # shown as it is, never read as rich markup
        Console(stderr=True).print(said, highlight=False, soft_wrap=True)  # one line
        raise SystemExit(1) from None
