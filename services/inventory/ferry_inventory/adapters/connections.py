"""The providers this inventory service keeps connected, stored so a restart reconnects them."""

import msgspec
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

from ferry_shared.inventory import CONNECTION_PREFIX, connection_key
from ferry_shared.providers import ProviderConnection


class ConnectionStore:
    """``_connection.<provider>`` keys in the inventory bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def put(self, connection: ProviderConnection) -> None:
        await self._kv.put(connection_key(connection.provider.name), msgspec.json.encode(connection))

    async def delete(self, provider: str) -> None:
        await self._kv.delete(connection_key(provider))

    async def all(self) -> list[ProviderConnection]:
        try:
            keys = await self._kv.keys(filters=[f"{CONNECTION_PREFIX}.*"])
        except NoKeysError:
            return []
        connections = []
        for key in keys:
            entry = await self._kv.get(key)
            if entry.value:
                connections.append(msgspec.json.decode(entry.value, type=ProviderConnection))
        return connections
