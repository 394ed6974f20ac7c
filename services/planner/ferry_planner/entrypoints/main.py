"""Process entry point: ``python -m ferry_planner`` runs the planner service until SIGTERM."""

import asyncio

from ferry_planner.bootstrap import SERVICE, bootstrap
from ferry_shared.service import run_service
from ferry_shared.settings import ServiceSettings


def main() -> None:
    """Run the service with settings from the environment."""
    asyncio.run(run_service(SERVICE, ServiceSettings(), bootstrap))
