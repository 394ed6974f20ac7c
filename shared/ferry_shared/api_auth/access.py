"""What each route needs: a Ferry resource and verb (``ferry.dev``), or one of the few
routes that need less (health: nothing; API documents: any authenticated caller).

A route declares it with ``dependencies=[requires(...)]``; :class:`~.guard.ApiGuard`
refuses to start an app that has a route without a declaration.
"""

from dataclasses import dataclass
from typing import Final, Protocol

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from ferry_shared.api_errors import ApiError

GROUP: Final = "ferry.dev"
RESOURCES: Final = frozenset({"providers", "networkmaps", "storagemaps", "plans", "migrations", "inventory"})
VERBS: Final = frozenset({"get", "list", "create", "update", "delete"})
MIGRATION_VERBS: Final = frozenset({"cancel", "cutover"})
MUTATING_VERBS: Final = frozenset({"create", "update", "delete", "cancel", "cutover"})
GUARD_STATE: Final = "ferry_api_guard"
"""Where the app's :class:`~.guard.ApiGuard` is kept in ``app.state``."""


@dataclass(frozen=True)
class Requirement:
    """What a route needs. ``name_param`` names the path parameter holding the object's name."""

    verb: str
    resource: str | None = None
    name_param: str | None = None
    path: str | None = None
    """A non-resource URL checked as such (``/metrics``)."""
    authenticated: bool = True

    def __post_init__(self) -> None:
        if self.resource is not None:
            allowed = VERBS | (MIGRATION_VERBS if self.resource == "migrations" else frozenset())
            if self.resource not in RESOURCES or self.verb not in allowed:
                raise ValueError(f"no Ferry permission {self.verb} {self.resource}")

    @property
    def mutating(self) -> bool:
        return self.verb in MUTATING_VERBS

    @property
    def ferry_resource(self) -> bool:
        """Whether this needs a Ferry permission (rather than only a token, or nothing)."""
        return self.resource is not None or self.path is not None

    def describe(self) -> str:
        if self.resource is None:
            return f"{self.verb} {self.path}" if self.path else "an authenticated request"
        return f"{self.verb} {self.resource}"


OPEN: Final = Requirement(verb="get", authenticated=False)
"""Liveness and readiness: answered to anyone."""
AUTHENTICATED: Final = Requirement(verb="get")
"""The API documents: any caller with a valid token (as Kubernetes lets every
authenticated user read its discovery and OpenAPI documents)."""
METRICS: Final = Requirement(verb="get", path="/metrics")
"""Prometheus metrics: the non-resource URL ``/metrics``, as a scraper's role grants it."""


class Guard(Protocol):
    """What :class:`RequirementDependency` asks of the app's guard (``guard.ApiGuard``)."""

    async def check(self, request: Request, requirement: Requirement) -> None: ...


class RequirementDependency:
    """The FastAPI dependency that enforces one :class:`Requirement` through the app's guard."""

    def __init__(self, requirement: Requirement) -> None:
        self.requirement = requirement

    async def __call__(self, request: Request) -> None:
        if not self.requirement.authenticated:
            return
        guard: Guard | None = getattr(request.app.state, GUARD_STATE, None)
        if guard is not None:
            await guard.check(request, self.requirement)
        elif self.requirement.resource is not None:  # check_routes refuses such an app: never open by mistake
            raise ApiError(503, "auth_not_configured", "this service's API has no authentication set up")
        # else: a service with no API of its own (transfer, writer): its metrics and documents are open


def requires(verb: str, resource: str | None = None, *, name: str | None = None) -> DependsParam:
    """The dependency of a route that does ``verb`` on the Ferry ``resource``; ``name`` is the
    path parameter holding the object's name, passed to authorization."""
    return declared(Requirement(verb=verb, resource=resource, name_param=name))


def declared(requirement: Requirement) -> DependsParam:
    """The dependency of a route with a ready-made requirement (:data:`OPEN`, :data:`METRICS`…)."""
    dependency: DependsParam = Depends(RequirementDependency(requirement))
    return dependency
