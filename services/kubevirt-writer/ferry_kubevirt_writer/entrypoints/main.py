"""Process entry point: ``python -m ferry_kubevirt_writer`` runs the kubevirt-writer service
until SIGTERM. The only place that reads the writer's settings from the environment."""

import asyncio

from ferry_kubevirt_writer.bootstrap import SERVICE, bootstrap
from ferry_kubevirt_writer.settings import WriterSettings
from ferry_shared.service import Bus, ServiceParts, run_service
from ferry_shared.settings import ServiceSettings


def main() -> None:
    """Run the service with settings from the environment."""
    own = WriterSettings()

    async def compose(bus: Bus, settings: ServiceSettings) -> ServiceParts:
        return (await bootstrap(bus, settings, own)).parts

    asyncio.run(run_service(SERVICE, ServiceSettings(), compose))
