"""Logged-in vSphere sessions for reading disks, one per source provider per process.

:class:`SourceSessions` asks for a one-time clone ticket (from the inventory, through
:mod:`.source_tickets`: the transfer never holds a provider's password) and turns it into a
session of its own (TLS probe and ``CloneSession`` from :mod:`ferry_shared.vsphere`, in a
worker thread), keeps the session for every later copy from that provider, and gets a new
ticket and session when a copy finds it expired. Concurrent copies share one login.
Failures are :class:`~ferry_shared.vsphere.errors.ProviderError` s whose messages name the
endpoint, never a ticket or the session cookie.
"""

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.endpoint import Endpoint, parse_endpoint
from ferry_shared.vsphere.session import Session, clone_session
from ferry_shared.vsphere.trust import client_context, normalize_thumbprint, probe

log = logging.getLogger(__name__)


class TicketSource(Protocol):
    async def get(self, provider: str) -> Secret:
        """A fresh one-time clone ticket to the provider's vCenter; a ``ProviderError`` says why not."""


@dataclass(frozen=True)
class SourceLogin:
    """One logged-in session and what a datastore reader needs from it."""

    spec: ProviderSpec
    endpoint: Endpoint
    context: ssl.SSLContext
    pinned: str
    """The pinned SHA-256 thumbprint in canonical form, or ""."""
    session: Session

    @property
    def cookie(self) -> str:
        """The ``vmware_soap_session`` cookie of the session (never log it)."""
        return str(self.session.service._stub.cookie)

    @property
    def host(self) -> str:
        """``host:port`` for datastore URLs."""
        return str(self.endpoint)


Login = Callable[[ProviderSpec, Secret], SourceLogin]


@dataclass(frozen=True)
class LoginTimeouts:
    connect: float = 10.0
    call: float = 60.0


def vsphere_clone_login(timeouts: LoginTimeouts) -> Login:
    """A blocking login: probe TLS (the provider's own trust settings), then ``CloneSession``."""

    def login(spec: ProviderSpec, ticket: Secret) -> SourceLogin:
        endpoint = parse_endpoint(spec.url)
        pinned = normalize_thumbprint(spec.thumbprint) if spec.thumbprint.strip() else ""
        context = client_context(spec)
        probe(endpoint, context, pinned, timeouts.connect)
        session = clone_session(endpoint, context, pinned, ticket, timeouts.call)
        return SourceLogin(spec, endpoint, context, pinned, session)

    return login


def _close(login: SourceLogin) -> None:
    try:
        login.session.close()
    except Exception:
        log.warning("logging out of %s failed", login.endpoint, exc_info=True)


class SourceSessions:
    """One cached login per provider name; see the module docstring."""

    def __init__(self, tickets: TicketSource, login: Login) -> None:
        self._tickets = tickets
        self._login = login
        self._sessions: dict[str, SourceLogin] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing: set[asyncio.Future[None]] = set()

    async def get(self, spec: ProviderSpec) -> SourceLogin:
        """The provider's session, logging in if there is none (or its settings changed)."""
        async with self._lock(spec.name):
            current = self._sessions.get(spec.name)
            if current is not None and current.spec == spec:
                return current
            return await self._replace(spec, current)

    async def renew(self, stale: SourceLogin) -> SourceLogin:
        """Log in again because ``stale`` was refused; a copy that renewed it first wins."""
        spec = stale.spec
        async with self._lock(spec.name):
            current = self._sessions.get(spec.name)
            if current is not None and current is not stale:
                return current
            log.info("logging in to provider %s again: the datastore refused the session", spec.name)
            return await self._replace(spec, current)

    async def close_all(self) -> None:
        """Log out of every session (at shutdown)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for login in sessions:
            self._close_later(login)
        if self._closing:
            await asyncio.wait(self._closing)

    async def _replace(self, spec: ProviderSpec, old: SourceLogin | None) -> SourceLogin:
        self._sessions.pop(spec.name, None)
        if old is not None:
            self._close_later(old)
        ticket = await self._tickets.get(spec.name)
        pending = asyncio.ensure_future(asyncio.to_thread(self._login, spec, ticket))
        try:
            login = await asyncio.shield(pending)
        except asyncio.CancelledError:  # the copy was cancelled mid-login: log out once the login is done
            pending.add_done_callback(self._close_abandoned)
            raise
        self._sessions[spec.name] = login
        return login

    def _close_abandoned(self, pending: "asyncio.Future[SourceLogin]") -> None:
        if not pending.cancelled() and pending.exception() is None:
            self._close_later(pending.result())

    def _close_later(self, login: SourceLogin) -> None:
        """Log out in a worker thread (it may take a while); :meth:`close_all` waits for it."""
        closing = asyncio.ensure_future(asyncio.to_thread(_close, login))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())
