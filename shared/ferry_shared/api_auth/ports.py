"""What the API guard needs from an authenticator: who holds a token, and may they do this."""

from dataclasses import dataclass
from typing import Protocol

from ferry_shared.credentials import Secret


@dataclass(frozen=True)
class Caller:
    """Who made a request, as the authenticator knows them."""

    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Further attributes the authenticator vouched for (Kubernetes ``extra``), passed on to authorization."""


@dataclass(frozen=True)
class AccessCheck:
    """One thing a caller asks to do: a Ferry resource (or a non-resource path) and a verb."""

    verb: str
    resource: str | None = None
    name: str | None = None
    path: str | None = None
    """A non-resource URL (``/metrics``) when ``resource`` is None."""


@dataclass(frozen=True)
class Decision:
    """An authorization answer; ``reason`` is the authorizer's own words, if any."""

    allowed: bool
    reason: str = ""


class AuthUnavailableError(Exception):
    """The authenticator could not answer (the Kubernetes API is down); the request may be retried."""


class Authenticator(Protocol):
    """Turns a bearer token into a caller, and answers whether a caller may do something."""

    @property
    def mode(self) -> str:
        """``token`` or ``kubernetes``: which kind of token a caller must bring."""
        ...

    async def authenticate(self, token: Secret) -> Caller | None:
        """The caller who holds ``token``, or None when the token is not valid."""
        ...

    async def authorize(self, caller: Caller, check: AccessCheck) -> Decision:
        """Whether ``caller`` may do ``check``."""
        ...
