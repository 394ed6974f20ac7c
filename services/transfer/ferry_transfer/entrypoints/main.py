"""Process entry point: ``python -m ferry_transfer`` runs the transfer service until SIGTERM.

The only place that reads the service's settings from the environment."""

import asyncio

# pyVmomi's import briefly holds about 40 MiB more than it keeps; imported before everything
# else, that peak does not stack on the rest of the process (a worker's peak RSS counts).
import pyVmomi  # noqa: F401  # isort: skip

from ferry_shared.service import Bus, ServiceParts, run_service
from ferry_shared.settings import ServiceSettings
from ferry_transfer.adapters.memory import return_large_buffers
from ferry_transfer.bootstrap import SERVICE, bootstrap
from ferry_transfer.settings import TransferSettings


def main() -> None:
    """Run the service with settings from the environment; its consumer takes ``ranges_in_flight`` at
    once, with the transfer's own (short) ack wait."""
    return_large_buffers()
    transfer = TransferSettings()
    own = {"max_in_flight": transfer.ranges_in_flight, "ack_wait": transfer.ack_wait}
    settings = ServiceSettings().model_copy(update=own)

    async def compose(bus: Bus, service_settings: ServiceSettings) -> ServiceParts:
        return (await bootstrap(bus, service_settings, transfer)).parts

    asyncio.run(run_service(SERVICE, settings, compose))
