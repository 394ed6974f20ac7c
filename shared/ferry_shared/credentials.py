"""Provider secrets, kept apart from provider records: the :class:`Secret` value type and
the :class:`CredentialStore` port every service reads them through.

The planner writes a provider's secret (vCenter password or kubeconfig) when the
provider is created and deletes it with the provider; services that connect read it.
Where the secrets rest is a backend of the port (:mod:`ferry_shared.credential_stores`):
AES-GCM ciphertext in the ``ferry_credentials`` KV bucket, or Kubernetes Secrets. A
:class:`Secret` never shows its value in ``repr``/``str``, so it cannot leak through a log
line or an error message.
"""

from typing import Protocol

from ferry_shared.errors import PermanentError

CREDENTIALS_UNREADABLE = "credentials_unreadable"


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


class CredentialStore(Protocol):
    """One secret per provider name."""

    async def put(self, provider: str, secret: Secret) -> None: ...

    async def get(self, provider: str) -> Secret | None:
        """The provider's secret, None when none is stored; raises
        :class:`CredentialsUnreadableError` when one is stored but cannot be read."""
        ...

    async def delete(self, provider: str) -> None:
        """Remove the provider's secret (nothing happens when there is none)."""
        ...


class CredentialsUnreadableError(PermanentError):
    """A secret is stored for the provider but this service cannot read it (wrong key,
    tampered value, no permission). The message names the provider and the cause, never
    the value."""

    def __init__(self, provider: str, cause: str) -> None:
        super().__init__(
            CREDENTIALS_UNREADABLE, f"the stored credentials of provider '{provider}' cannot be read: {cause}"
        )
        self.provider = provider
