"""Process entry point: ``python -m ferry_planner`` runs the planner service until SIGTERM."""

import asyncio

from ferry_planner.bootstrap import SERVICE, bootstrap
from ferry_planner.entrypoints.http_api import install
from ferry_planner.settings import PlannerSettings
from ferry_shared.api_auth.settings import ApiAuthSettings, api_guard
from ferry_shared.service import Bus, ServiceParts, run_service
from ferry_shared.settings import ServiceSettings


def main() -> None:
    """Run the service with settings from the environment."""
    settings, own, auth = ServiceSettings(), PlannerSettings(), ApiAuthSettings()

    async def compose(bus: Bus, shared: ServiceSettings) -> ServiceParts:
        wired = await bootstrap(bus, shared, own)
        wired.parts.app_setup = lambda app: install(app, wired.api)
        wired.parts.api_guard = api_guard(auth)
        return wired.parts

    asyncio.run(run_service(SERVICE, settings, compose))
