"""One-time vSphere clone tickets for transfer workers: the :class:`CloneTickets` port.

The inventory keeps one logged-in session per provider for issuing tickets (a ticket is
bound to the session that acquired it, so that session stays open while the worker turns
the ticket into its own with ``CloneSession``). The session is opened at the first request,
reused while the provider's settings and password stay the same, and opened again when
vCenter has ended it. Blocking pyVmomi calls run in worker threads through
:func:`blocking.call`, so :meth:`VsphereCloneTickets.close` ends them at shutdown.
"""

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from ferry_inventory.adapters.vsphere import blocking
from ferry_inventory.adapters.vsphere.login import log_in
from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.errors import SessionLostError
from ferry_shared.vsphere.session import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TicketSettings:
    connect_timeout: float = 10.0
    call_timeout: float = 60.0


@dataclass(frozen=True)
class _Issuer:
    spec: ProviderSpec
    password_digest: bytes
    """A keyed digest of the password the session logged in with: a changed password means a new login."""
    session: Session


class VsphereCloneTickets:
    """A ticket-issuing session per provider; see the module docstring."""

    def __init__(self, settings: TicketSettings | None = None) -> None:
        self._settings = settings or TicketSettings()
        self._issuers: dict[str, _Issuer] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._stop = asyncio.Event()
        self._salt = secrets.token_bytes(32)

    async def issue(self, spec: ProviderSpec, password: Secret) -> Secret:
        async with self._locks.setdefault(spec.name, asyncio.Lock()):
            issuer = await self._issuer(spec, password)
            try:
                return await blocking.call(self._stop, issuer.session.acquire_clone_ticket)
            except SessionLostError:
                log.info("the ticket session of provider %s ended; logging in again", spec.name)
                self._drop(spec.name)
                issuer = await self._issuer(spec, password)
                return await blocking.call(self._stop, issuer.session.acquire_clone_ticket)

    async def close(self) -> None:
        """Log out of every ticket session and refuse new requests (at shutdown)."""
        self._stop.set()
        issuers, self._issuers = list(self._issuers.values()), {}
        await asyncio.gather(*(asyncio.to_thread(issuer.session.close) for issuer in issuers))

    async def _issuer(self, spec: ProviderSpec, password: Secret) -> _Issuer:
        digest = hmac.digest(self._salt, password.reveal().encode(), hashlib.sha256)
        current = self._issuers.get(spec.name)
        if current is not None and current.spec == spec and current.password_digest == digest:
            return current
        if current is not None:
            self._drop(spec.name)
        settings = self._settings

        def open_session() -> Session:
            return log_in(spec, password, connect_timeout=settings.connect_timeout, call_timeout=settings.call_timeout)

        session = await blocking.call(self._stop, open_session, discard=Session.close)
        issuer = _Issuer(spec, digest, session)
        self._issuers[spec.name] = issuer
        return issuer

    def _drop(self, provider: str) -> None:
        old = self._issuers.pop(provider, None)
        if old is not None:
            asyncio.get_running_loop().run_in_executor(None, old.session.close)
