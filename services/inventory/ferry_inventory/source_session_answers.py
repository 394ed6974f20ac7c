"""The inventory's answer to ``ferry.rpc.inventory.source_session``: a transfer worker asks
for a way into a vSphere provider and gets a one-time clone ticket, never the password.

The provider's settings are the inventory's own (the stored connection the planner gave
it), not the asker's, so a request names only the provider; the password is read from the
credentials store and goes no further than the inventory's login. Every ticket issued and
every refusal is logged (``ferry.audit``) with the asking worker; neither the ticket nor the
password appears in a log line. Like the handlers, this reaches the outside world only
through the ports of :mod:`.domain.ports`.
"""

import logging

import msgspec

from ferry_inventory.domain.ports import CloneTickets, ConnectionLookup, Credentials
from ferry_shared.errors import FerryError
from ferry_shared.source_sessions import (
    BAD_REQUEST,
    LOGIN_FAILED,
    PROVIDER_NOT_READY,
    PROVIDER_UNKNOWN,
    RefusalReason,
    SourceSessionRefused,
    SourceTicket,
    decode_request,
)
from ferry_shared.vsphere.errors import ProviderError

audit = logging.getLogger("ferry.audit")


def _refused(reason: RefusalReason, message: str, *, asker: str, login_reason: str = "") -> bytes:
    audit.warning("source session refused to %s: %s: %s", asker or "an unnamed worker", reason, message)
    return SourceSessionRefused(reason=reason, message=message, login_reason=login_reason).encode()


async def answer_source_session(
    data: bytes, *, connections: ConnectionLookup, credentials: Credentials, tickets: CloneTickets
) -> bytes:
    """The encoded answer to one request (a ticket, or a refusal saying why and what to do)."""
    try:
        request = decode_request(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        return _refused(BAD_REQUEST, f"the request is not a source_session request: {error}", asker="")
    asker, name = request.worker, request.provider
    connection = await connections.get(name)
    if connection is None or connection.provider.type != "vsphere":
        return _refused(
            PROVIDER_UNKNOWN,
            f"the inventory keeps no vSphere provider named '{name}'; add it (ferry provider add) and plan again",
            asker=asker,
        )
    try:
        password = await credentials.get(name)
    except FerryError as error:
        return _refused(PROVIDER_NOT_READY, f"the password of provider '{name}' cannot be read: {error}", asker=asker)
    if password is None:
        return _refused(
            PROVIDER_NOT_READY,
            f"no password is stored for provider '{name}'; set it with `ferry provider update {name} --password-stdin`",
            asker=asker,
        )
    spec = connection.provider
    try:
        ticket = await tickets.issue(spec, password)
    except ProviderError as error:
        return _refused(
            LOGIN_FAILED,
            f"the inventory could not get a session to provider '{name}': {error.message}",
            asker=asker,
            login_reason=error.reason,
        )
    audit.info(
        "issued a clone ticket of provider %s to %s (%s)",
        name,
        asker or "an unnamed worker",
        request.purpose or "login",
    )
    return SourceTicket(ticket, spec.url).encode()
