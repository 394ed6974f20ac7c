"""The planner's HTTP API: providers, maps, plans, migrations, and a server-sent-events stream.

Bodies and parameters are checked by their models (``api_models``, ``ferry_shared.api_fields``)
before a use case runs; each route's OpenAPI lists the error answers it can give.
"""

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, FastAPI, Request, status
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.bootstrap import PlannerApi
from ferry_planner.domain.maps import NetworkDestination, NetworkMap, NetworkPair, StorageMap, StoragePair
from ferry_planner.domain.plans import Plan, PlanVm
from ferry_planner.domain.providers import ProviderChange
from ferry_planner.entrypoints.api_models import (
    CancelIn,
    MigrationIn,
    NetworkMapIn,
    PlanIn,
    ProviderIn,
    ProviderPatchIn,
    StorageMapIn,
)
from ferry_planner.entrypoints.encoded_plans import EncodedPlans
from ferry_planner.handlers import maps as map_cases
from ferry_planner.handlers import migration_queries
from ferry_planner.handlers import plans as plan_cases
from ferry_planner.handlers import providers as provider_cases
from ferry_planner.handlers.cancel_migration import cancel_migration as cancel_vms
from ferry_planner.handlers.errors import ConflictError, InvalidError, NotFoundError
from ferry_planner.handlers.start_migration import start_migration
from ferry_shared.api_auth import audit
from ferry_shared.api_auth.access import requires
from ferry_shared.api_errors import error_responses
from ferry_shared.api_fields import Dns1123Label
from ferry_shared.credentials import Secret
from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.providers import ProviderSpec

HEARTBEAT_SECONDS = 15.0
MAX_MESSAGE = 4000
"""Longest error message answered (a plan's not-ready reasons can be many)."""


class StructResponse(JSONResponse):
    """JSON of msgspec structs, encoded in one pass (a listing of 500 plans is about 0.5 MB)."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def _json(value: object, status_code: int = 200) -> JSONResponse:
    return StructResponse(value, status_code=status_code)


def _provider_spec(body: ProviderIn) -> tuple[ProviderSpec, Secret | None]:
    secret_field = body.password if body.type == "vsphere" else body.kubeconfig
    secret = Secret(secret_field.get_secret_value()) if secret_field else None
    spec = ProviderSpec(
        name=body.name,
        type=body.type,
        url=body.url,
        username=body.username,
        ca_bundle=body.ca_bundle,
        thumbprint=body.thumbprint,
        insecure=body.insecure,
        context=body.context,
        in_cluster=body.in_cluster,
        path=body.path,
    )
    return spec, secret


def planner_router(api: PlannerApi) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    ports = api.ports
    encoded_plans = EncodedPlans()

    @router.post(
        "/providers",
        status_code=status.HTTP_201_CREATED,
        tags=["providers"],
        responses=error_responses(400, 409, 422),
        dependencies=[requires("create", "providers")],
    )
    async def add_provider(body: ProviderIn) -> JSONResponse:
        spec, secret = _provider_spec(body)
        return _json(await provider_cases.add_provider(ports, spec, secret), 201)

    @router.get("/providers", tags=["providers"], dependencies=[requires("list", "providers")])
    async def providers() -> JSONResponse:
        return _json(await provider_cases.providers(ports))

    @router.get(
        "/providers/{name}",
        tags=["providers"],
        responses=error_responses(404, 422),
        dependencies=[requires("get", "providers", name="name")],
    )
    async def provider(name: Dns1123Label) -> JSONResponse:
        return _json(await provider_cases.provider(ports, name))

    @router.patch(
        "/providers/{name}",
        tags=["providers"],
        responses=error_responses(400, 404, 409, 422, 503),
        dependencies=[requires("update", "providers", name="name")],
    )
    async def update_provider(name: Dns1123Label, body: ProviderPatchIn, request: Request) -> JSONResponse:
        """Change a provider's settings, password or kubeconfig (fields left out stay): the
        inventory connects it again and its plans are validated again; follow its status until
        it is ready or in error. The type cannot be changed (422), and a vsphere provider's
        ``url``, ``ca_bundle``, ``thumbprint`` or ``insecure`` change only with its password
        given again (422). While a migration uses the provider, only its password, user name
        and certificate trust may change; ``url``, ``context``, ``in_cluster``, ``path`` or a
        kubeconfig for another server or context answer 409 ``provider_in_use``."""
        if body.password is not None and body.kubeconfig is not None:
            raise InvalidError("give a password (vsphere) or a kubeconfig (kubernetes), not both")
        secret_field, given = (
            ("password", body.password) if body.password is not None else ("kubeconfig", body.kubeconfig)
        )
        secret = Secret(given.get_secret_value()) if given is not None else None
        change = ProviderChange(**body.model_dump(exclude={"type", "password", "kubeconfig"}))
        audit.note(request.scope, "changed", ",".join(sorted([*change.given(), *([secret_field] if secret else [])])))
        return _json(
            await provider_cases.update_provider(
                ports, name, change, secret, secret_field=secret_field, type_=body.type
            )
        )

    @router.delete(
        "/providers/{name}",
        status_code=204,
        tags=["providers"],
        responses=error_responses(404, 409, 422),
        dependencies=[requires("delete", "providers", name="name")],
    )
    async def delete_provider(name: Dns1123Label) -> None:
        await provider_cases.delete_provider(ports, name)

    @router.post(
        "/networkmaps",
        status_code=201,
        tags=["maps"],
        responses=error_responses(400, 409, 422),
        dependencies=[requires("create", "networkmaps")],
    )
    async def create_network_map(body: NetworkMapIn) -> JSONResponse:
        pairs = tuple(
            NetworkPair(source=p.source, destination=NetworkDestination(p.destination), nad=p.nad) for p in body.pairs
        )
        network_map = NetworkMap(
            name=body.name,
            source_provider=body.source_provider,
            target_provider=body.target_provider,
            pairs=pairs,
        )
        return _json(await map_cases.create_network_map(ports, network_map), 201)

    @router.post(
        "/storagemaps",
        status_code=201,
        tags=["maps"],
        responses=error_responses(400, 409, 422),
        dependencies=[requires("create", "storagemaps")],
    )
    async def create_storage_map(body: StorageMapIn) -> JSONResponse:
        pairs = tuple(StoragePair(**p.model_dump()) for p in body.pairs)
        storage_map = StorageMap(
            name=body.name,
            source_provider=body.source_provider,
            target_provider=body.target_provider,
            pairs=pairs,
        )
        return _json(await map_cases.create_storage_map(ports, storage_map), 201)

    @router.get("/networkmaps", tags=["maps"], dependencies=[requires("list", "networkmaps")])
    async def network_maps() -> JSONResponse:
        return _json(await map_cases.network_maps(ports))

    @router.get("/storagemaps", tags=["maps"], dependencies=[requires("list", "storagemaps")])
    async def storage_maps() -> JSONResponse:
        return _json(await map_cases.storage_maps(ports))

    @router.get(
        "/networkmaps/{name}",
        tags=["maps"],
        responses=error_responses(404, 422),
        dependencies=[requires("get", "networkmaps", name="name")],
    )
    async def network_map(name: Dns1123Label) -> JSONResponse:
        return _json(await map_cases.network_map_view(ports, name))

    @router.get(
        "/storagemaps/{name}",
        tags=["maps"],
        responses=error_responses(404, 422),
        dependencies=[requires("get", "storagemaps", name="name")],
    )
    async def storage_map(name: Dns1123Label) -> JSONResponse:
        return _json(await map_cases.storage_map_view(ports, name))

    @router.delete(
        "/networkmaps/{name}",
        status_code=204,
        tags=["maps"],
        responses=error_responses(404, 422),
        dependencies=[requires("delete", "networkmaps", name="name")],
    )
    async def delete_network_map(name: Dns1123Label) -> None:
        await map_cases.delete_network_map(ports, name)

    @router.delete(
        "/storagemaps/{name}",
        status_code=204,
        tags=["maps"],
        responses=error_responses(404, 422),
        dependencies=[requires("delete", "storagemaps", name="name")],
    )
    async def delete_storage_map(name: Dns1123Label) -> None:
        await map_cases.delete_storage_map(ports, name)

    @router.post(
        "/plans",
        status_code=201,
        tags=["plans"],
        responses=error_responses(400, 409, 422),
        dependencies=[requires("create", "plans")],
    )
    async def create_plan(body: PlanIn) -> JSONResponse:
        plan = Plan(
            **body.model_dump(exclude={"vms"}),
            vms=tuple(PlanVm(ref=vm.ref, target_name=vm.target_name) for vm in body.vms),
        )
        return _json(await plan_cases.create_plan(ports, plan), 201)

    @router.get("/plans", tags=["plans"], dependencies=[requires("list", "plans")])
    async def plans() -> Response:
        return Response(encoded_plans.listing(await plan_cases.plans(ports)), media_type=JSONResponse.media_type)

    @router.get(
        "/plans/{name}",
        tags=["plans"],
        responses=error_responses(404, 422),
        dependencies=[requires("get", "plans", name="name")],
    )
    async def plan(name: Dns1123Label) -> JSONResponse:
        return _json(await plan_cases.plan_view(ports, name))

    @router.delete(
        "/plans/{name}",
        status_code=204,
        tags=["plans"],
        responses=error_responses(404, 422),
        dependencies=[requires("delete", "plans", name="name")],
    )
    async def delete_plan(name: Dns1123Label) -> None:
        await plan_cases.delete_plan(ports, name)

    @router.post(
        "/migrations",
        status_code=201,
        tags=["migrations"],
        responses=error_responses(400, 404, 409, 422, 503),
        dependencies=[requires("create", "migrations")],
    )
    async def create_migration(body: MigrationIn) -> JSONResponse:
        """Start a Ready plan; VMs already migrated by an earlier run of it are Skipped."""
        return _json(await start_migration(ports, body.plan, body.name), 201)

    @router.get(
        "/migrations",
        tags=["migrations"],
        responses=error_responses(422),
        dependencies=[requires("list", "migrations")],
    )
    async def list_migrations(plan: Dns1123Label | None = None) -> JSONResponse:
        """Migrations, newest first (only those of ``plan`` when given)."""
        return _json(migration_queries.migrations(ports, plan))

    @router.get(
        "/migrations/{name}",
        tags=["migrations"],
        responses=error_responses(404, 422),
        dependencies=[requires("get", "migrations", name="name")],
    )
    async def migration(name: Dns1123Label) -> JSONResponse:
        return _json(migration_queries.migration(ports, name))

    @router.post(
        "/migrations/{name}/cancel",
        status_code=202,
        tags=["migrations"],
        responses=error_responses(400, 404, 422, 503),
        dependencies=[requires("cancel", "migrations", name="name")],
    )
    async def cancel_migration(name: Dns1123Label, body: Annotated[CancelIn | None, Body()] = None) -> JSONResponse:
        """Cancel VMs by id or name (none named: every unfinished VM)."""
        return _json(await cancel_vms(ports, name, body.vms if body else []), 202)

    @router.get(
        "/events", tags=["events"], response_class=StreamingResponse, dependencies=[requires("list", "migrations")]
    )
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: one ``data:`` JSON object per change."""
        return StreamingResponse(_event_stream(api.events, request), media_type="text/event-stream")

    return router


async def _event_stream(events: Broadcaster, request: Request) -> AsyncIterator[str]:
    async with events.subscribe() as queue:
        yield ": connected\n\n"
        while not await request.is_disconnected():
            try:
                change: dict[str, Any] = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            yield f"event: {change['kind']}\ndata: {json.dumps(change)}\n\n"


def install(app: FastAPI, api: PlannerApi) -> None:
    """Add the planner routes and map its errors to HTTP statuses."""
    app.include_router(planner_router(api))

    @app.exception_handler(PermanentError)
    async def planner_error(request: Request, error: PermanentError) -> JSONResponse:
        code = 404 if isinstance(error, NotFoundError) else 409 if isinstance(error, ConflictError) else 422
        return JSONResponse({"reason": error.code, "message": _capped(error.message)}, status_code=code)

    @app.exception_handler(TemporaryError)
    async def planner_busy(request: Request, error: TemporaryError) -> JSONResponse:
        """A change that raced another (a migration stored meanwhile): the client may simply retry."""
        retry_after = str(max(1, math.ceil(error.delay)))
        return JSONResponse(
            {"reason": error.code, "message": _capped(error.message)},
            status_code=503,
            headers={"Retry-After": retry_after},
        )


def _capped(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else f"{message[: MAX_MESSAGE - 1]}…"
