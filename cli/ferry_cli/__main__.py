"""``python -m ferry_cli``: the ``ferry`` command (as in the service image, which has no console scripts)."""

from ferry_cli.main import app

app()
