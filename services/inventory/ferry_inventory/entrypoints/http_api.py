"""The inventory query API: providers' VMs, networks, datastores, hosts and target objects.

Provider names are DNS-1123 labels, source objects are named by up to 255 characters
without control characters (``ferry_shared.api_fields``); anything else is a 422, and
each route's OpenAPI lists the error answers it can give. A provider that is not ready
(still connecting, or in error) has no inventory to answer from: its queries are a 409
``provider_not_ready`` whose message gives the provider's phase, reason and message,
never an empty list.
"""

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, FastAPI, Path, Query

from ferry_inventory.domain.index import InventoryIndex, VmFilter
from ferry_shared.api_auth.access import requires
from ferry_shared.api_errors import ApiError, ErrorBody, error_responses
from ferry_shared.api_fields import Dns1123Label, ObjectId, SourceRef, shown
from ferry_shared.inventory import RECORD_TYPES
from ferry_shared.providers import PROVIDER_NOT_READY, ProviderPhase, ProviderStatus

KIND_PATHS = {
    "vms": "vm",
    "networks": "network",
    "datastores": "datastore",
    "hosts": "host",
    "clusters": "cluster",
    "datacenters": "datacenter",
    "folders": "folder",
    "namespaces": "namespace",
    "storageclasses": "storageclass",
    "nads": "nad",
    "targetvms": "targetvm",
}


KindPath = Annotated[str, Path(max_length=32, description=f"one of {', '.join(sorted(KIND_PATHS))}")]
Identifier = Annotated[ObjectId, Path(description="the record's id, or its name when unique")]


def _plain(value: object) -> Any:
    return msgspec.to_builtins(value)


QUERY_ERRORS: dict[int | str, dict[str, Any]] = {
    **error_responses(404, 422),
    409: {
        "model": ErrorBody,
        "description": f"`{PROVIDER_NOT_READY}`: the provider is still connecting or in error, so it has no "
        "inventory to answer from; the message gives its phase, reason and message",
    },
}


def not_ready_message(provider: str, status: ProviderStatus | None) -> str:
    """What a query on a provider that is not ready answers: its state, its error, what to do."""
    if status is None or status.phase is ProviderPhase.CONNECTING:
        return f"provider {shown(provider)} is still connecting and has no inventory yet; query again once it is ready"
    reason = f" ({status.reason})" if status.reason else ""
    said = f": {status.message.rstrip('.')}" if status.message else ""
    return f"provider {shown(provider)} is in error{reason}{said}; its inventory is available once it is ready again"


def _provider_ready(index: InventoryIndex, provider: str) -> None:
    if provider not in index.providers():
        raise ApiError(404, "provider_not_found", f"no inventory for provider {shown(provider)}; is it connected?")
    status = index.status(provider)
    if status is None or status.phase is not ProviderPhase.READY:
        raise ApiError(409, PROVIDER_NOT_READY, not_ready_message(provider, status))


def inventory_router(index: InventoryIndex) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["inventory"])

    @router.get("/providers", dependencies=[requires("list", "inventory")])
    def providers() -> list[dict[str, Any]]:
        return [
            {"name": name, "status": _plain(index.status(name)), "counts": index.counts(name)}
            for name in index.providers()
        ]

    @router.get(
        "/providers/{provider}/vms",
        responses=QUERY_ERRORS,
        dependencies=[requires("get", "inventory", name="provider")],
    )
    def vms(
        provider: Dns1123Label,
        name: Annotated[SourceRef | None, Query(description="substring of the VM name")] = None,
        power_state: Annotated[SourceRef | None, Query(description="poweredOn, poweredOff or suspended")] = None,
        host: Annotated[SourceRef | None, Query(description="host name or id")] = None,
        datastore: Annotated[SourceRef | None, Query(description="datastore name or id")] = None,
        network: Annotated[SourceRef | None, Query(description="network name or id")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        _provider_ready(index, provider)
        query = VmFilter(name=name, power_state=power_state, host=host, datastore=datastore, network=network)
        found = index.vms(provider, query)
        return {"total": len(found), "items": _plain(found[offset : offset + limit])}

    @router.get(
        "/providers/{provider}/{kind_path}",
        responses=QUERY_ERRORS,
        dependencies=[requires("get", "inventory", name="provider")],
    )
    def list_kind(provider: Dns1123Label, kind_path: KindPath) -> dict[str, Any]:
        kind = _kind(kind_path)
        _provider_ready(index, provider)
        items = index.records(provider, kind)
        return {"total": len(items), "items": _plain(items)}

    @router.get(
        "/providers/{provider}/{kind_path}/{identifier:path}",
        responses=QUERY_ERRORS,
        dependencies=[requires("get", "inventory", name="provider")],
    )
    def get_one(provider: Dns1123Label, kind_path: KindPath, identifier: Identifier) -> Any:
        kind = _kind(kind_path)
        _provider_ready(index, provider)
        record = index.get(provider, kind, identifier)
        if record is None:
            by_name = [r for r in index.records(provider, kind) if r.name == identifier]
            if len(by_name) == 1:
                record = by_name[0]
        if record is None:
            raise ApiError(404, "not_found", f"no {kind} {shown(identifier)} in provider {shown(provider)}")
        return _plain(record)

    return router


def _kind(kind_path: str) -> str:
    kind = KIND_PATHS.get(kind_path)
    if kind is None or kind not in RECORD_TYPES:
        raise ApiError(404, "unknown_kind", f"unknown inventory kind {shown(kind_path)}; one of {sorted(KIND_PATHS)}")
    return kind


def install(app: FastAPI, index: InventoryIndex) -> None:
    """Add the inventory routes to ``app``."""
    app.include_router(inventory_router(index))
