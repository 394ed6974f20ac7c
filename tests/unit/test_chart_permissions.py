"""The chart's NATS permissions file is what the code's allow-lists render to."""

import json
from pathlib import Path

from ferry_shared import subjects
from ferry_shared.bus.chart_permissions import CHART_FILE, REGENERATE, render

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_chart_permissions_match_the_code() -> None:
    committed = (REPO / CHART_FILE).read_text()
    assert committed == render(), f"{CHART_FILE} is stale: run `{REGENERATE}` from the repository root and commit it"


def test_every_service_has_its_permissions_and_none_publishes_everything() -> None:
    permissions = json.loads(render())
    assert sorted(permissions) == sorted(subjects.SERVICES)
    for service, block in permissions.items():
        assert ">" not in block["publish"]["allow"], service
        assert block["subscribe"]["allow"], service
