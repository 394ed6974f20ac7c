"""Asking the inventory for a one-time vSphere clone ticket (``ferry.rpc.inventory.source_session``).

The transfer holds no provider password: before it logs in to a source vCenter it asks the
inventory, which does hold it, for a ticket, and :func:`.source_sessions.vsphere_clone_login`
turns the ticket into a session of the transfer's own. A refusal becomes a
:class:`ProviderError` whose reason says whether trying later may help
(:data:`INVENTORY_UNAVAILABLE`, :data:`~ferry_shared.source_sessions.PROVIDER_NOT_READY`, a
passing login failure) or a person must act (an unknown provider, a wrong password).
"""

import os
import socket

import msgspec
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from ferry_shared import subjects
from ferry_shared.credentials import Secret
from ferry_shared.source_sessions import (
    LOGIN_FAILED,
    SourceSessionRefused,
    SourceSessionRequest,
    decode_answer,
    encode_request,
)
from ferry_shared.vsphere.errors import ProviderError

INVENTORY_UNAVAILABLE = "inventory_unavailable"
"""No inventory answered the request in time (it is starting, or not running)."""


def worker_name() -> str:
    """``host:pid`` of this worker, for the inventory's audit line."""
    return f"{socket.gethostname()}:{os.getpid()}"


class InventoryTickets:
    """One ticket per :meth:`get`; ``timeout`` bounds the inventory's login and answer."""

    def __init__(self, nc: Client, *, timeout: float, worker: str | None = None) -> None:
        self._nc = nc
        self._timeout = timeout
        self._worker = worker or worker_name()
        self._asked: set[str] = set()

    async def get(self, provider: str) -> Secret:
        """A fresh one-time ticket to ``provider``'s vCenter."""
        purpose = "renewal" if provider in self._asked else "login"
        self._asked.add(provider)
        request = encode_request(SourceSessionRequest(provider=provider, worker=self._worker, purpose=purpose))
        try:
            reply = await self._nc.request(subjects.SOURCE_SESSION_RPC, request, timeout=self._timeout)
        except (NoRespondersError, NatsTimeoutError) as error:
            raise ProviderError(
                INVENTORY_UNAVAILABLE,
                f"no inventory answered the request for a session to provider '{provider}' "
                f"within {self._timeout:.0f}s ({type(error).__name__}); check that the inventory is running",
            ) from error
        except NatsError as error:
            raise ProviderError(
                INVENTORY_UNAVAILABLE, f"asking the inventory for a session to provider '{provider}' failed: {error}"
            ) from error
        try:
            answer = decode_answer(reply.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise ProviderError(
                INVENTORY_UNAVAILABLE, f"the inventory's answer for provider '{provider}' could not be read: {error}"
            ) from error
        if isinstance(answer, SourceSessionRefused):
            reason = answer.login_reason if answer.reason == LOGIN_FAILED and answer.login_reason else answer.reason
            raise ProviderError(reason, answer.message)
        return answer.ticket
