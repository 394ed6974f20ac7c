"""Process entry point: ``python -m ferry_planner`` runs the planner service until SIGTERM."""

import asyncio

from ferry_planner.bootstrap import SERVICE, bootstrap
from ferry_planner.entrypoints.http_api import install
from ferry_shared.service import Bus, ServiceParts, run_service
from ferry_shared.settings import ServiceSettings


async def compose(bus: Bus, settings: ServiceSettings) -> ServiceParts:
    """Wire the service and put its HTTP routes on the app."""
    wired = await bootstrap(bus, settings)
    wired.parts.app_setup = lambda app: install(app, wired.planner, wired.migrations)
    return wired.parts


def main() -> None:
    """Run the service with settings from the environment."""
    asyncio.run(run_service(SERVICE, ServiceSettings(), compose))
