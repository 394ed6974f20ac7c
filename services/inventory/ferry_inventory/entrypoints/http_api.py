"""The inventory query API: providers' VMs, networks, datastores, hosts and target objects."""

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, FastAPI, Query

from ferry_inventory.domain.index import InventoryIndex, VmFilter
from ferry_shared.api_errors import ApiError
from ferry_shared.inventory import RECORD_TYPES

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


def _plain(value: object) -> Any:
    return msgspec.to_builtins(value)


def _provider_known(index: InventoryIndex, provider: str) -> None:
    if provider not in index.providers():
        raise ApiError(404, "provider_not_found", f"no inventory for provider '{provider}'; is it connected?")


def inventory_router(index: InventoryIndex) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["inventory"])

    @router.get("/providers")
    def providers() -> list[dict[str, Any]]:
        return [
            {"name": name, "status": _plain(index.status(name)), "counts": index.counts(name)}
            for name in index.providers()
        ]

    @router.get("/providers/{provider}/vms")
    def vms(
        provider: str,
        name: Annotated[str | None, Query(description="substring of the VM name")] = None,
        power_state: str | None = None,
        host: str | None = None,
        datastore: str | None = None,
        network: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        _provider_known(index, provider)
        query = VmFilter(name=name, power_state=power_state, host=host, datastore=datastore, network=network)
        found = index.vms(provider, query)
        return {"total": len(found), "items": _plain(found[offset : offset + limit])}

    @router.get("/providers/{provider}/{kind_path}")
    def list_kind(provider: str, kind_path: str) -> dict[str, Any]:
        kind = _kind(kind_path)
        _provider_known(index, provider)
        items = index.records(provider, kind)
        return {"total": len(items), "items": _plain(items)}

    @router.get("/providers/{provider}/{kind_path}/{identifier:path}")
    def get_one(provider: str, kind_path: str, identifier: str) -> Any:
        kind = _kind(kind_path)
        _provider_known(index, provider)
        record = index.get(provider, kind, identifier)
        if record is None:
            by_name = [r for r in index.records(provider, kind) if r.name == identifier]
            if len(by_name) == 1:
                record = by_name[0]
        if record is None:
            raise ApiError(404, "not_found", f"no {kind} '{identifier}' in provider '{provider}'")
        return _plain(record)

    return router


def _kind(kind_path: str) -> str:
    kind = KIND_PATHS.get(kind_path)
    if kind is None or kind not in RECORD_TYPES:
        raise ApiError(404, "unknown_kind", f"unknown inventory kind '{kind_path}'; one of {sorted(KIND_PATHS)}")
    return kind


def install(app: FastAPI, index: InventoryIndex) -> None:
    """Add the inventory routes to ``app``."""
    app.include_router(inventory_router(index))
