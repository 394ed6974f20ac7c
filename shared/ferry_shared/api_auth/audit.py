"""One audit line per mutating API call (logger ``ferry.audit``): who, what, outcome.

The line names the caller, the Ferry resource, verb and object, the HTTP method and
path, the answer's status and the client's address, and what a handler notes about the
call (:func:`note`, e.g. the names of the settings it changed); never a header or a body,
so never a token or a password.
"""

import logging
from dataclasses import dataclass, field
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferry_shared.api_auth.ports import Caller

AUDIT_LOGGER: Final = "ferry.audit"
SCOPE_KEY: Final = "ferry.audit"
"""Where a request's pending audit entries are kept in its ASGI scope."""

log = logging.getLogger(AUDIT_LOGGER)


@dataclass
class AuditEntry:
    """One mutating call, filled in as the guard learns who the caller is."""

    verb: str
    resource: str
    name: str | None
    method: str
    path: str
    client: str
    caller: Caller | None = None
    denied: str = ""
    """Why the guard refused the call (``unauthenticated``, ``forbidden``…), if it did."""
    extra: dict[str, str] = field(default_factory=dict)

    def fields(self, status: int) -> dict[str, object]:
        return {
            "user": self.caller.user if self.caller else None,
            "groups": list(self.caller.groups) if self.caller else [],
            "verb": self.verb,
            "resource": self.resource,
            "name": self.name,
            "method": self.method,
            "path": self.path,
            "status": status,
            "outcome": self.denied or ("succeeded" if status < 400 else "failed"),
            "client": self.client,
            **self.extra,
        }


def pending_entries(scope: Scope) -> list[AuditEntry] | None:
    """The list the guard adds a request's audit entry to (None outside :class:`AuditMiddleware`)."""
    entries = scope.get(SCOPE_KEY)
    return entries if isinstance(entries, list) else None


def note(scope: Scope, key: str, value: str) -> None:
    """Add ``key: value`` to the audit line of the request ``scope`` belongs to (never a secret's value)."""
    for entry in pending_entries(scope) or []:
        entry.extra[key] = value


class AuditMiddleware:
    """Logs each audit entry a request gathered, with the status it was answered with."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entries: list[AuditEntry] = []
        scope[SCOPE_KEY] = entries
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            for entry in entries:
                log.info("audit %s %s", entry.verb, entry.resource, extra={"audit": entry.fields(status)})
