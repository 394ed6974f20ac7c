"""The providers this inventory service keeps connected, stored so a restart reconnects them."""

import msgspec
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from ferry_shared.bus.kv_watch import read_matching
from ferry_shared.inventory import CONNECTION_PREFIX, connection_key
from ferry_shared.providers import ProviderConnection


class ConnectionStore:
    """``_connection.<provider>`` keys in the inventory bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def put(self, connection: ProviderConnection) -> None:
        await self._kv.put(connection_key(connection.provider.name), msgspec.json.encode(connection))

    async def get(self, provider: str) -> ProviderConnection | None:
        try:
            entry = await self._kv.get(connection_key(provider))
        except KeyNotFoundError:
            return None
        return msgspec.json.decode(entry.value, type=ProviderConnection) if entry.value else None

    async def delete(self, provider: str) -> None:
        await self._kv.delete(connection_key(provider))

    async def all(self) -> list[ProviderConnection]:
        stored = await read_matching(self._kv, f"{CONNECTION_PREFIX}.>")
        return [msgspec.json.decode(entry.value, type=ProviderConnection) for _, entry in sorted(stored.items())]
