"""Process entry point: ``python -m ferry_transfer`` runs the transfer service until SIGTERM."""

import asyncio

from ferry_shared.service import Bus, ServiceParts, run_service
from ferry_shared.settings import ServiceSettings
from ferry_transfer.bootstrap import SERVICE, bootstrap


async def compose(bus: Bus, settings: ServiceSettings) -> ServiceParts:
    """Wire the service with its tuning from the environment."""
    return (await bootstrap(bus, settings)).parts


def main() -> None:
    """Run the service with settings from the environment."""
    asyncio.run(run_service(SERVICE, ServiceSettings(), compose))
