"""An inventory process holding one vSphere provider's password, for a transfer run without
the planner (the transfer's integration tests, the line-rate benchmark).

The transfer logs in to vSphere only with one-time clone tickets that the inventory issues
(``ferry.rpc.inventory.source_session``). :func:`inventory_desk` stores the password sealed
in the credentials bucket, starts the inventory as a process, tells it to connect the
provider as the planner would (``ConnectProvider``) and returns once it issues tickets.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from nats.errors import NoRespondersError

from ferry_peers.nats_server import NatsServer
from ferry_peers.services import ServiceProcess, start_service
from ferry_shared import subjects
from ferry_shared.credential_stores.choice import open_credential_store
from ferry_shared.credentials import Secret
from ferry_shared.providers import ConnectProvider, ProviderSpec
from ferry_shared.service import Bus
from ferry_shared.settings import ServiceSettings
from ferry_shared.source_sessions import SourceSessionRequest, SourceTicket, decode_answer, encode_request

READY_TIMEOUT = 60.0


async def store_password(bus: Bus, nats: NatsServer, provider: str, password: Secret) -> None:
    """Seal ``password`` in the credentials bucket, with the stack's keyring."""
    settings = ServiceSettings(secrets_key_file=nats.security.secrets_key_file)
    await (await open_credential_store(bus.js, settings)).put(provider, password)


@contextlib.asynccontextmanager
async def inventory_desk(
    bus: Bus, nats: NatsServer, spec: ProviderSpec, password: Secret, work_dir: Path
) -> AsyncIterator[ServiceProcess]:
    """A running inventory that issues clone tickets to ``spec``'s vCenter; stopped on exit."""
    await store_password(bus, nats, spec.name, password)
    inventory = await asyncio.to_thread(start_service, "inventory", nats, work_dir)
    try:
        await bus.publisher.publish(ConnectProvider(message_id=f"desk-{spec.name}", provider=spec, generation=1))
        await _until_it_issues_tickets(bus, spec.name)
        yield inventory
    finally:
        await asyncio.to_thread(inventory.process.stop)


async def _until_it_issues_tickets(bus: Bus, provider: str) -> None:
    request = encode_request(SourceSessionRequest(provider=provider, worker="inventory-desk", purpose="readiness"))
    deadline = time.monotonic() + READY_TIMEOUT
    said = "no answer"
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError, NoRespondersError):
            answer = decode_answer((await bus.nc.request(subjects.SOURCE_SESSION_RPC, request, timeout=10)).data)
            if isinstance(answer, SourceTicket):
                return
            said = f"{answer.reason}: {answer.message}"
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the inventory issued no ticket for provider '{provider}' within {READY_TIMEOUT:.0f}s ({said})")
