"""The services' NATS permissions as the Helm chart reads them (``files/nats-permissions.json``).

The chart cannot run Python, so the allow-lists of :mod:`ferry_shared.bus.permissions` are
rendered into a committed JSON file the chart includes with ``.Files.Get``; a unit test fails
when it is stale. Regenerate with ``python -m ferry_shared.bus.chart_permissions``.
"""

import json
import sys
from pathlib import Path

from ferry_shared import subjects
from ferry_shared.bus.permissions import Permissions, service_permissions

CHART_FILE = Path("deploy/helm/ferry/files/nats-permissions.json")
"""Where the chart keeps the rendered permissions, relative to the repository's root."""

REGENERATE = "python -m ferry_shared.bus.chart_permissions"


def _rule(allow: tuple[str, ...], deny: tuple[str, ...]) -> dict[str, list[str]]:
    rule = {"allow": list(allow)}
    if deny:
        rule["deny"] = list(deny)
    return rule


def permissions_object(permissions: Permissions) -> dict[str, object]:
    """One user's ``permissions`` as JSON (nats-server's configuration reads JSON too)."""
    block: dict[str, object] = {
        "publish": _rule(permissions.publish, permissions.publish_deny),
        "subscribe": _rule(permissions.subscribe, permissions.subscribe_deny),
    }
    if permissions.allow_responses:
        block["allow_responses"] = True
    return block


def render() -> str:
    """The chart file's text: each service's name mapped to its permissions."""
    services = {service: permissions_object(service_permissions(service)) for service in subjects.SERVICES}
    return json.dumps(services, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """Write :func:`render` to the path given (default :data:`CHART_FILE`)."""
    target = Path(argv[1]) if len(argv) > 1 else CHART_FILE
    target.write_text(render())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
