"""Every route of the planner and the inventory declares its ``ferry.dev`` permission, the
guard refuses an app with a route that does not, and requests without a token, with a
wrong one, or beyond the caller's role are refused in the ``{reason, message}`` shape
(a hand-written authenticator behind the guard's port plays the cluster)."""

import logging
from typing import Any, cast

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import Route

from ferry_inventory.domain.index import InventoryIndex
from ferry_inventory.entrypoints.http_api import install as install_inventory
from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.bootstrap import PlannerApi
from ferry_planner.entrypoints.http_api import install as install_planner
from ferry_planner.handlers.context import PlannerPorts
from ferry_shared.api_auth.access import OPEN, Requirement, requires
from ferry_shared.api_auth.audit import AUDIT_LOGGER
from ferry_shared.api_auth.guard import ApiGuard, RouteWithoutRequirementError, check_routes, declared_routes
from ferry_shared.api_auth.ports import AccessCheck, AuthUnavailableError, Caller, Decision
from ferry_shared.credentials import Secret
from ferry_shared.health import health_app

from .planner_fakes import FakeCredentials, ready_world, source_vm

PLANNER_ROUTES = {
    "POST /api/v1/providers": ("create", "providers", None),
    "GET /api/v1/providers": ("list", "providers", None),
    "GET /api/v1/providers/{name}": ("get", "providers", "name"),
    "PATCH /api/v1/providers/{name}": ("update", "providers", "name"),
    "DELETE /api/v1/providers/{name}": ("delete", "providers", "name"),
    "POST /api/v1/networkmaps": ("create", "networkmaps", None),
    "GET /api/v1/networkmaps": ("list", "networkmaps", None),
    "GET /api/v1/networkmaps/{name}": ("get", "networkmaps", "name"),
    "DELETE /api/v1/networkmaps/{name}": ("delete", "networkmaps", "name"),
    "POST /api/v1/storagemaps": ("create", "storagemaps", None),
    "GET /api/v1/storagemaps": ("list", "storagemaps", None),
    "GET /api/v1/storagemaps/{name}": ("get", "storagemaps", "name"),
    "DELETE /api/v1/storagemaps/{name}": ("delete", "storagemaps", "name"),
    "POST /api/v1/plans": ("create", "plans", None),
    "GET /api/v1/plans": ("list", "plans", None),
    "GET /api/v1/plans/{name}": ("get", "plans", "name"),
    "DELETE /api/v1/plans/{name}": ("delete", "plans", "name"),
    "POST /api/v1/migrations": ("create", "migrations", None),
    "GET /api/v1/migrations": ("list", "migrations", None),
    "GET /api/v1/migrations/{name}": ("get", "migrations", "name"),
    "POST /api/v1/migrations/{name}/cancel": ("cancel", "migrations", "name"),
    "GET /api/v1/events": ("list", "migrations", None),
}
INVENTORY_ROUTES = {
    "GET /api/v1/providers": ("list", "inventory", None),
    "GET /api/v1/providers/{provider}/vms": ("get", "inventory", "provider"),
    "GET /api/v1/providers/{provider}/{kind_path}": ("get", "inventory", "provider"),
    "GET /api/v1/providers/{provider}/{kind_path}/{identifier:path}": ("get", "inventory", "provider"),
}
SHARED_ROUTES = {"GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json", "GET /docs"}
GOOD = "good-token-for-the-unit-tests"
ADMIN = "admin-token-for-the-unit-tests"


class RoleAuthenticator:
    """Plays the cluster: ``GOOD`` is user ``alice``, who may only get and list; ``ADMIN``
    is user ``root``, who may do anything."""

    mode = "kubernetes"

    def __init__(self) -> None:
        self.checks: list[AccessCheck] = []
        self.down = False

    async def authenticate(self, token: Secret) -> Caller | None:
        if self.down:
            raise AuthUnavailableError("the Kubernetes API did not answer tokenreviews (ConnectionError)")
        users = {GOOD: Caller(user="alice", groups=("team",)), ADMIN: Caller(user="root", groups=())}
        return users.get(token.reveal())

    async def authorize(self, caller: Caller, check: AccessCheck) -> Decision:
        self.checks.append(check)
        return Decision(allowed=caller.user == "root" or check.verb in ("get", "list"))


def TestClient(app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 50000)) -> httpx.AsyncClient:  # noqa: N802
    """An HTTP client of ``app`` in this process, calling from ``client``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://ferry.test")


def planner_app(guard: ApiGuard | None, ports: PlannerPorts | None = None) -> FastAPI:
    app = health_app("planner", {}, guard)
    install_planner(app, PlannerApi(ports=cast(Any, ports), events=Broadcaster()))
    return app


def inventory_app(guard: ApiGuard | None) -> FastAPI:
    app = health_app("inventory", {}, guard)
    install_inventory(app, InventoryIndex())
    return app


def declared(app: FastAPI) -> dict[str, tuple[str, str | None, str | None]]:
    found = {}
    for path, methods, requirement in declared_routes(app):
        assert requirement is not None, path
        for method in sorted(methods - {"HEAD"}):
            found[f"{method} {path}"] = (requirement.verb, requirement.resource, requirement.name_param)
    return found


@pytest.mark.parametrize(("make", "expected"), [(planner_app, PLANNER_ROUTES), (inventory_app, INVENTORY_ROUTES)])
def test_every_route_maps_to_its_resource_and_verb(make: Any, expected: dict[str, Any]) -> None:
    app = make(ApiGuard(RoleAuthenticator()))
    check_routes(app)
    found = declared(app)
    assert {k: v for k, v in found.items() if k.split()[1].startswith("/api/")} == expected
    assert set(found) - set(expected) == SHARED_ROUTES


def test_a_route_without_a_declared_permission_stops_the_app_from_starting() -> None:
    app = planner_app(ApiGuard(RoleAuthenticator()))
    router = APIRouter()

    @router.get("/api/v1/sneaky")
    def sneaky() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(RouteWithoutRequirementError, match="/api/v1/sneaky"):
        check_routes(app)
    bare = planner_app(ApiGuard(RoleAuthenticator()))
    bare.router.routes.append(Route("/raw", lambda request: None))
    with pytest.raises(RouteWithoutRequirementError, match="/raw"):
        check_routes(bare)


async def test_a_ferry_route_on_an_app_without_a_guard_is_refused_at_start_and_closed_at_run() -> None:
    app = planner_app(None)
    with pytest.raises(RouteWithoutRequirementError, match="has no guard"):
        check_routes(app)
    answer = await TestClient(app).get("/api/v1/plans")
    assert answer.status_code == 503 and answer.json()["reason"] == "auth_not_configured"


def test_a_requirement_names_a_ferry_resource_and_one_of_its_verbs() -> None:
    with pytest.raises(ValueError, match="no Ferry permission"):
        requires("cancel", "plans")
    with pytest.raises(ValueError, match="no Ferry permission"):
        Requirement(verb="get", resource="secrets")
    assert Requirement(verb="cutover", resource="migrations").mutating


async def _request(client: httpx.AsyncClient, key: str, headers: dict[str, str]) -> Any:
    method, path = key.split(" ", 1)
    path = path.replace("{identifier:path}", "x").replace("{kind_path}", "vms")
    path = path.replace("{name}", "n1").replace("{provider}", "vc")
    return await client.request(method, path, headers=headers, json={} if method == "POST" else None)


@pytest.mark.parametrize(("make", "routes"), [(planner_app, PLANNER_ROUTES), (inventory_app, INVENTORY_ROUTES)])
async def test_no_token_or_a_wrong_one_is_a_401_everywhere_but_health(make: Any, routes: dict[str, Any]) -> None:
    app = make(ApiGuard(RoleAuthenticator()))
    check_routes(app)
    client = TestClient(app)
    for key in [*routes, "GET /metrics", "GET /openapi.json", "GET /docs"]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {GOOD}"}):
            answer = await _request(client, key, headers)
            assert answer.status_code == 401, (key, headers, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert answer.json()["reason"] == "unauthenticated"
            assert "Kubernetes token" in answer.json()["message"]
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    assert OPEN.authenticated is False


async def test_the_api_documents_need_only_a_valid_token_and_list_the_401_and_403() -> None:
    authenticator = RoleAuthenticator()
    app = planner_app(ApiGuard(authenticator))
    check_routes(app)
    client = TestClient(app)
    document = (await client.get("/openapi.json", headers={"Authorization": f"Bearer {GOOD}"})).json()
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    create = document["paths"]["/api/v1/migrations"]["post"]
    assert {"401", "403"} <= create["responses"].keys() and create["security"] == [{"bearer": []}]
    assert "401" not in document["paths"]["/healthz"]["get"]["responses"]
    assert authenticator.checks == []  # documents: authentication only
    assert (await client.get("/docs", headers={"Authorization": f"Bearer {GOOD}"})).status_code == 200
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {GOOD}"})).status_code == 200
    assert authenticator.checks == [AccessCheck(verb="get", path="/metrics")]


async def test_a_caller_beyond_their_role_gets_a_403_that_names_the_role_and_the_call_is_audited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    authenticator = RoleAuthenticator()
    client = TestClient(inventory_app(ApiGuard(authenticator)))
    app = planner_app(ApiGuard(authenticator))
    check_routes(app)
    planner = TestClient(app, ("10.1.2.3", 4567))
    auth = {"Authorization": f"Bearer {GOOD}"}
    assert (await client.get("/api/v1/providers", headers=auth)).json() == []
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        refused = await planner.post("/api/v1/migrations/m-1/cancel", headers=auth, json={})
        anonymous = await planner.delete("/api/v1/plans/p1")
    assert refused.status_code == 403
    assert refused.json() == {
        "reason": "forbidden",
        "message": "user alice may not cancel migrations 'm-1'; the ferry-operator role allows it",
    }
    assert authenticator.checks[-1] == AccessCheck(verb="cancel", resource="migrations", name="m-1")
    assert anonymous.status_code == 401
    lines = [record.__dict__["audit"] for record in caplog.records if record.name == AUDIT_LOGGER]
    assert lines == [
        {"user": "alice", "groups": ["team"], "verb": "cancel", "resource": "migrations", "name": "m-1",
         "method": "POST", "path": "/api/v1/migrations/m-1/cancel", "status": 403, "outcome": "forbidden",
         "client": "10.1.2.3:4567"},
        {"user": None, "groups": [], "verb": "delete", "resource": "plans", "name": "p1", "method": "DELETE",
         "path": "/api/v1/plans/p1", "status": 401, "outcome": "unauthenticated", "client": "10.1.2.3:4567"},
    ]  # fmt: skip
    assert GOOD not in caplog.text


async def test_reads_are_not_audited_and_an_unreachable_cluster_is_a_503(caplog: pytest.LogCaptureFixture) -> None:
    authenticator = RoleAuthenticator()
    client = TestClient(inventory_app(ApiGuard(authenticator)))
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        assert (await client.get("/api/v1/providers", headers={"Authorization": f"Bearer {GOOD}"})).status_code == 200
    assert not [r for r in caplog.records if r.name == AUDIT_LOGGER]
    authenticator.down = True
    answer = await client.get("/api/v1/providers", headers={"Authorization": f"Bearer {GOOD}"})
    assert answer.status_code == 503 and answer.json()["reason"] == "auth_unavailable"


async def test_a_provider_change_needs_update_on_providers_and_is_audited_without_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    authenticator = RoleAuthenticator()
    planner = TestClient(planner_app(ApiGuard(authenticator)))
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        refused = await planner.patch("/api/v1/providers/vc", headers={"Authorization": f"Bearer {GOOD}"},
                                      json={"password": "n3w-passw0rd"})  # fmt: skip
    assert refused.status_code == 403
    assert authenticator.checks[-1] == AccessCheck(verb="update", resource="providers", name="vc")
    [line] = [record.__dict__["audit"] for record in caplog.records if record.name == AUDIT_LOGGER]
    assert (line["verb"], line["resource"], line["name"], line["method"]) == ("update", "providers", "vc", "PATCH")
    assert "n3w-passw0rd" not in caplog.text


async def test_an_allowed_provider_change_is_audited_with_the_names_of_what_changed_never_their_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = ready_world([source_vm(1)])
    credentials = world.ports.credentials
    assert isinstance(credentials, FakeCredentials)
    credentials.secrets["vc"] = Secret("old-password")
    planner = TestClient(planner_app(ApiGuard(RoleAuthenticator()), world.ports))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        change = {"url": "https://vc2.example.com/sdk", "password": "n3w-passw0rd"}
        changed = await planner.patch("/api/v1/providers/vc", headers=admin, json=change)
        empty = await planner.patch("/api/v1/providers/vc", headers=admin, json={"password": ""})
    assert changed.status_code == 200, changed.text
    assert empty.status_code == 422 and "the password is empty" in empty.json()["message"]
    lines = [record.__dict__["audit"] for record in caplog.records if record.name == AUDIT_LOGGER]
    assert [(line["user"], line["status"], line["changed"]) for line in lines] == [
        ("root", 200, "password,url"), ("root", 422, "password")
    ]  # fmt: skip
    assert "n3w-passw0rd" not in caplog.text and credentials.secrets["vc"] == Secret("n3w-passw0rd")
