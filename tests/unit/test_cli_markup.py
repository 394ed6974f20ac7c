"""Text that comes from a user or a server (names, paths, messages) is shown as it is: rich
markup in it is neither applied nor an error."""

import io

import pytest
from rich.console import Console

from ferry_cli import main
from ferry_cli.client import CliError
from ferry_cli.output import table_of

SAID = "the datastore [LocalDS_0] is full; [/] [bold]retry[/bold]"


def shown(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def test_a_table_cell_and_title_with_brackets_are_shown_verbatim() -> None:
    columns = [("NAME", lambda row: row["name"]), ("MESSAGE", lambda row: row["message"])]
    table = table_of([{"name": "vc", "message": SAID}], columns, title="[bold]providers[/]")
    text = shown(table)
    assert SAID in text and "[bold]providers[/]" in text


def test_an_error_with_brackets_prints_verbatim_on_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing() -> None:
        raise CliError(SAID)

    monkeypatch.setattr(main, "typer_app", failing)
    with pytest.raises(SystemExit) as exited:
        main.app()
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip() == f"error: {SAID}"
