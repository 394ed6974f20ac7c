"""Process entry point: ``python -m ferry_kubevirt_writer`` runs the kubevirt-writer service until SIGTERM."""

import asyncio

from ferry_kubevirt_writer.bootstrap import SERVICE, bootstrap
from ferry_shared.service import run_service
from ferry_shared.settings import ServiceSettings


def main() -> None:
    """Run the service with settings from the environment."""
    asyncio.run(run_service(SERVICE, ServiceSettings(), bootstrap))
