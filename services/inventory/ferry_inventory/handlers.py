"""Use cases of the inventory service: connect and disconnect providers."""

import functools
import logging

from ferry_inventory.adapters.connections import ConnectionStore
from ferry_inventory.adapters.supervisor import WatcherSupervisor
from ferry_shared.bus.consumer import HandlerTable
from ferry_shared.bus.delivery import Delivery
from ferry_shared.credentials import CredentialStore
from ferry_shared.errors import PermanentError
from ferry_shared.providers import ConnectProvider, DisconnectProvider, ProviderConnection

log = logging.getLogger(__name__)

NEEDS_SECRET = {"vsphere"}


async def connect_provider(
    command: ConnectProvider,
    delivery: Delivery,
    *,
    supervisor: WatcherSupervisor,
    connections: ConnectionStore,
    credentials: CredentialStore,
) -> None:
    """Start (or restart with new settings) the watcher of one provider."""
    async with supervisor.lock(command.provider.name):
        await _connect(command, supervisor=supervisor, connections=connections, credentials=credentials)


async def _connect(
    command: ConnectProvider,
    *,
    supervisor: WatcherSupervisor,
    connections: ConnectionStore,
    credentials: CredentialStore,
) -> None:
    spec = command.provider
    current = supervisor.generation(spec.name)
    if current is not None and current >= command.generation:
        log.info("provider %s generation %d already connected", spec.name, current)
        return
    secret = await credentials.get(spec.name)
    if secret is None and spec.type in NEEDS_SECRET:
        raise PermanentError(
            "credentials_missing", f"no credentials are stored for provider '{spec.name}'; add it again"
        )
    await connections.put(ProviderConnection(provider=spec, generation=command.generation))
    await supervisor.start(spec, secret, command.generation)


async def disconnect_provider(
    command: DisconnectProvider,
    delivery: Delivery,
    *,
    supervisor: WatcherSupervisor,
    connections: ConnectionStore,
) -> None:
    """Stop watching a provider and delete its inventory."""
    async with supervisor.lock(command.provider_name):
        await connections.delete(command.provider_name)
        await supervisor.forget(command.provider_name)


def handler_table(
    supervisor: WatcherSupervisor, connections: ConnectionStore, credentials: CredentialStore
) -> HandlerTable:
    """Command type → handler, with dependencies bound."""
    return {
        ConnectProvider: functools.partial(
            connect_provider, supervisor=supervisor, connections=connections, credentials=credentials
        ),
        DisconnectProvider: functools.partial(disconnect_provider, supervisor=supervisor, connections=connections),
    }
