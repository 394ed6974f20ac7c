"""Provider secrets, kept apart from provider records in their own KV bucket.

The planner writes a provider's secret (vCenter password or kubeconfig) when the
provider is created; services that connect read it. A :class:`Secret` never shows its
value in ``repr``/``str``, so it cannot leak through a log line or an error message.
"""

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue


class Secret:
    """A secret string that prints as ``***``; use :meth:`reveal` where it is needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class CredentialStore:
    """One secret per provider name in the credentials bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def put(self, provider: str, secret: Secret) -> None:
        await self._kv.put(provider, secret.reveal().encode())

    async def get(self, provider: str) -> Secret | None:
        try:
            entry = await self._kv.get(provider)
        except KeyNotFoundError:
            return None
        return Secret(entry.value.decode()) if entry.value else None

    async def delete(self, provider: str) -> None:
        await self._kv.purge(provider)
