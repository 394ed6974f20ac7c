"""The API guard: checks each request against its route's :class:`~.access.Requirement`.

:func:`install_guard` puts an :class:`ApiGuard` on an app (with the audit middleware);
:func:`check_routes`, run once every route is added, refuses an app with a route that
declares no requirement and documents the 401/403 answers in its OpenAPI.
"""

import logging
from collections.abc import Iterator
from typing import Any, Final

from fastapi import FastAPI, Request, routing
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from ferry_shared.api_auth.access import GUARD_STATE, Requirement, RequirementDependency
from ferry_shared.api_auth.audit import AuditEntry, AuditMiddleware, pending_entries
from ferry_shared.api_auth.ports import AccessCheck, Authenticator, AuthUnavailableError
from ferry_shared.api_errors import ApiError, ErrorBody
from ferry_shared.api_fields import shown
from ferry_shared.credentials import Secret

log = logging.getLogger(__name__)

CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="ferry"'}
_TOKEN_KIND = {
    "token": "the Ferry API token",
    "kubernetes": "a Kubernetes token (a ServiceAccount's or your own)",
}


class RouteWithoutRequirementError(RuntimeError):
    """A route was added without declaring the permission it needs."""


class ApiGuard:
    """Authenticates and authorizes requests with ``authenticator``."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def check(self, request: Request, requirement: Requirement) -> None:
        raw = request.path_params.get(requirement.name_param) if requirement.name_param else None
        name = str(raw) if raw is not None else None
        entry = None
        if requirement.mutating and requirement.resource is not None:
            client = f"{request.client.host}:{request.client.port}" if request.client else ""
            path = _capped(request.url.path)
            entry = AuditEntry(
                requirement.verb, requirement.resource, name and _capped(name), request.method, path, client
            )
            entries = pending_entries(request.scope)
            if entries is not None:
                entries.append(entry)
        token = _bearer(request)
        kind = _TOKEN_KIND.get(self.authenticator.mode, "a token")
        if token is None:
            self._deny(entry, "unauthenticated")
            raise ApiError(401, "unauthenticated", f"a bearer token is required: {kind}", CHALLENGE)
        try:
            caller = await self.authenticator.authenticate(token)
            if caller is None:
                self._deny(entry, "unauthenticated")
                raise ApiError(401, "unauthenticated", f"the bearer token is not valid (expected {kind})", CHALLENGE)
            if entry is not None:
                entry.caller = caller
            if not requirement.ferry_resource:
                return
            check = AccessCheck(verb=requirement.verb, resource=requirement.resource, name=name, path=requirement.path)
            decision = await self.authenticator.authorize(caller, check)
        except AuthUnavailableError as error:
            self._deny(entry, "unavailable")
            log.warning("cannot check an API caller: %s", error)
            raise ApiError(503, "auth_unavailable", f"cannot check the caller now: {error}") from None
        if not decision.allowed:
            self._deny(entry, "forbidden")
            what = requirement.describe() + (f" {shown(name)}" if name else "")
            raise ApiError(403, "forbidden", f"user {caller.user} may not {what}; {_role_for(requirement)} allows it")

    @staticmethod
    def _deny(entry: AuditEntry | None, why: str) -> None:
        if entry is not None:
            entry.denied = why


def _role_for(requirement: Requirement) -> str:
    """The least of the chart's roles (``ferry-viewer``, ``-operator``, ``-admin``) that grants ``requirement``."""
    if requirement.resource is None:
        return "a role granting it"
    if not requirement.mutating:
        return "the ferry-viewer role"
    return "the ferry-admin role" if requirement.resource == "providers" else "the ferry-operator role"


def _capped(value: str, limit: int = 256) -> str:
    return value if len(value) <= limit else f"{value[:limit]}…"


def _bearer(request: Request) -> Secret | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return Secret(value) if scheme.lower() == "bearer" and value else None


def install_guard(app: FastAPI, guard: ApiGuard) -> None:
    """Check every request of ``app`` with ``guard`` and audit its mutating calls."""
    setattr(app.state, GUARD_STATE, guard)
    app.add_middleware(AuditMiddleware)


def requirement_of(route: BaseRoute) -> Requirement | None:
    """What ``route`` declared it needs (None: nothing declared)."""
    if not isinstance(route, APIRoute):
        return None
    found = [d.dependency.requirement for d in route.dependencies if isinstance(d.dependency, RequirementDependency)]
    return found[0] if len(found) == 1 else None


def declared_routes(app: FastAPI) -> Iterator[tuple[str, set[str], Requirement | None]]:
    """Each route of ``app`` (those of included routers too): path, methods, requirement."""
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path or str(getattr(route, "path", repr(route)))
        yield str(path), set(context.methods or ()), requirement_of(route)


def check_routes(app: FastAPI) -> None:
    """Refuse ``app`` if a route declares no requirement, or needs a Ferry permission on an
    app without a guard; document each guarded route's 401/403/503 answers in its OpenAPI."""
    guarded = isinstance(getattr(app.state, GUARD_STATE, None), ApiGuard)
    for path, _, requirement in declared_routes(app):
        if requirement is None:
            raise RouteWithoutRequirementError(f"route {path} declares no permission (dependencies=[requires(...)])")
        if requirement.resource is not None and not guarded:
            raise RouteWithoutRequirementError(f"route {path} needs {requirement.describe()} but the app has no guard")
    if guarded:
        _document_guard(app)


SCHEME: Final = "bearer"
_ERROR_SCHEMA: Final = {"$ref": "#/components/schemas/ErrorBody"}
_ANSWERS: Final = {
    status: {"description": description, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
    for status, description in {
        "401": "no valid bearer token (Authorization: Bearer <token>); WWW-Authenticate: Bearer",
        "403": "the caller may not do this",
        "503": "a dependency (the Kubernetes API, NATS) is unavailable; retry",
    }.items()
}


def _document_guard(app: FastAPI) -> None:
    """Add the bearer scheme, and to each guarded operation its 401/403/503, to ``app``'s OpenAPI."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).setdefault("ErrorBody", ErrorBody.model_json_schema())
        components.setdefault("securitySchemes", {})[SCHEME] = {"type": "http", "scheme": "bearer"}
        for path, methods, requirement in declared_routes(app):
            if requirement is None or not requirement.authenticated:
                continue
            statuses = ("401", "403", "503") if requirement.ferry_resource else ("401", "503")
            for method in methods:
                operation = schema.get("paths", {}).get(path, {}).get(method.lower())
                if operation is not None:
                    operation["security"] = [{SCHEME: []}]
                    answers = operation.setdefault("responses", {})
                    for status in statuses:
                        answers.setdefault(status, _ANSWERS[status])
        return schema

    app.openapi_schema = None
    app.openapi = openapi  # type: ignore[method-assign]
