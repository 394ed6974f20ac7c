"""Process entry point: ``python -m ferry_inventory`` runs the inventory service until
SIGTERM, with its settings read from the environment (the only place that reads them)."""

import asyncio
import functools

from ferry_inventory.bootstrap import SERVICE, bootstrap
from ferry_inventory.entrypoints.http_api import install
from ferry_inventory.settings import InventorySettings
from ferry_shared.api_auth.settings import ApiAuthSettings, api_guard
from ferry_shared.service import Bus, ServiceParts, run_service
from ferry_shared.settings import ServiceSettings


async def compose(bus: Bus, settings: ServiceSettings, own: InventorySettings, auth: ApiAuthSettings) -> ServiceParts:
    """Wire the service and put its HTTP routes, and the guard of their callers, on the app."""
    wired = await bootstrap(bus, settings, own)
    wired.parts.app_setup = lambda app: install(app, wired.api.index)
    wired.parts.api_guard = api_guard(auth)
    return wired.parts


def main() -> None:
    """Run the service with settings from the environment."""
    asyncio.run(
        run_service(
            SERVICE, ServiceSettings(), functools.partial(compose, own=InventorySettings(), auth=ApiAuthSettings())
        )
    )
