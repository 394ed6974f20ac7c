"""The contract of ``ferry.rpc.inventory.source_session``: how a transfer worker gets a vSphere session
without ever holding the provider's password.

The transfer sends a :class:`SourceSessionRequest` (core NATS request/reply, on its own inbox);
the inventory, which holds the provider's credentials, logs in and answers a
:class:`SourceTicket` — a one-time ``SessionManager.AcquireCloneTicket`` ticket that the
transfer turns into a session of its own with ``CloneSession`` — or a
:class:`SourceSessionRefused` with a reason and a message. The ticket travels only in
:meth:`SourceTicket.encode`'s bytes and a :class:`Secret` in memory: its ``repr`` is masked.
"""

from typing import Final, Literal

import msgspec

from ferry_shared.credentials import Secret

PROVIDER_UNKNOWN: Final = "provider_unknown"
"""The inventory keeps no vSphere provider of that name connected."""
PROVIDER_NOT_READY: Final = "provider_not_ready"
"""The provider is known but cannot issue tickets now (the inventory is starting, no password is stored)."""
LOGIN_FAILED: Final = "login_failed"
"""The inventory's login to vCenter (or the ticket call) failed; ``login_reason`` says why."""
BAD_REQUEST: Final = "bad_request"
"""The request could not be read."""
RefusalReason = Literal["provider_unknown", "provider_not_ready", "login_failed", "bad_request"]


class SourceSessionRequest(msgspec.Struct, frozen=True, kw_only=True, tag="ferry.inventory.source_session_request.v1"):
    """A transfer worker asks for a ticket to ``provider`` (for the inventory's audit log: who and why)."""

    provider: str
    worker: str = ""
    """The asking process (host and pid), for the audit line."""
    purpose: str = ""
    """``login`` or ``renewal`` (the previous session was refused)."""


class _TicketWire(msgspec.Struct, frozen=True, kw_only=True, tag="ferry.inventory.source_ticket.v1"):
    ticket: str
    url: str


class SourceTicket:
    """A one-time clone ticket for the vCenter at ``url`` (the provider's URL as the inventory knows it)."""

    __slots__ = ("ticket", "url")

    def __init__(self, ticket: Secret, url: str) -> None:
        self.ticket = ticket
        self.url = url

    def __repr__(self) -> str:
        return f"SourceTicket(ticket=***, url={self.url!r})"

    def encode(self) -> bytes:
        return msgspec.json.encode(_TicketWire(ticket=self.ticket.reveal(), url=self.url))


class SourceSessionRefused(msgspec.Struct, frozen=True, kw_only=True, tag="ferry.inventory.source_session_refused.v1"):
    """No ticket: ``reason`` (see the constants), ``login_reason`` (the vSphere failure's reason, for
    ``login_failed``) and a ``message`` for people (never a secret)."""

    reason: RefusalReason
    message: str
    login_reason: str = ""

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


SourceSessionAnswer = SourceTicket | SourceSessionRefused
_answers: msgspec.json.Decoder[_TicketWire | SourceSessionRefused] = msgspec.json.Decoder(
    _TicketWire | SourceSessionRefused
)
_requests = msgspec.json.Decoder(SourceSessionRequest)


def decode_request(data: bytes) -> SourceSessionRequest:
    """The request in ``data``; ``msgspec.DecodeError`` (or ``ValidationError``) when it is not one."""
    return _requests.decode(data)


def encode_request(request: SourceSessionRequest) -> bytes:
    return msgspec.json.encode(request)


def decode_answer(data: bytes) -> SourceSessionAnswer:
    """The inventory's answer in ``data``; ``msgspec.DecodeError`` (or ``ValidationError``) when it is not one."""
    answer = _answers.decode(data)
    if isinstance(answer, _TicketWire):
        return SourceTicket(Secret(answer.ticket), answer.url)
    return answer
