"""Use cases of NetworkMaps and StorageMaps: create, show with their status, delete."""

from ferry_planner.domain.map_validation import validate_network_map, validate_storage_map
from ferry_planner.domain.maps import MapStatus, NetworkMap, StorageMap
from ferry_planner.domain.views import NetworkMapView, StorageMapView
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import AlreadyExistsError, check_name
from ferry_planner.handlers.lookups import require, require_stored, target_view
from ferry_planner.handlers.providers import changed


async def create_network_map(ports: PlannerPorts, network_map: NetworkMap) -> NetworkMapView:
    check_name("NetworkMap", network_map.name)
    if await ports.resources.create(NetworkMap, network_map.name, network_map) is None:
        raise AlreadyExistsError("NetworkMap", network_map.name)
    changed(ports, "networkmap", network_map.name)
    return await network_map_view(ports, network_map.name)


async def create_storage_map(ports: PlannerPorts, storage_map: StorageMap) -> StorageMapView:
    check_name("StorageMap", storage_map.name)
    if await ports.resources.create(StorageMap, storage_map.name, storage_map) is None:
        raise AlreadyExistsError("StorageMap", storage_map.name)
    changed(ports, "storagemap", storage_map.name)
    return await storage_map_view(ports, storage_map.name)


async def network_map_view(ports: PlannerPorts, name: str) -> NetworkMapView:
    found = await require(ports, NetworkMap, "NetworkMap", name)
    return NetworkMapView(map=found, status=await _network_status(ports, found))


async def storage_map_view(ports: PlannerPorts, name: str) -> StorageMapView:
    found = await require(ports, StorageMap, "StorageMap", name)
    return StorageMapView(map=found, status=await _storage_status(ports, found))


async def network_maps(ports: PlannerPorts) -> list[NetworkMapView]:
    found = await ports.resources.list(NetworkMap)
    return [NetworkMapView(map=m, status=await _network_status(ports, m)) for m in found]


async def storage_maps(ports: PlannerPorts) -> list[StorageMapView]:
    found = await ports.resources.list(StorageMap)
    return [StorageMapView(map=m, status=await _storage_status(ports, m)) for m in found]


async def delete_network_map(ports: PlannerPorts, name: str) -> None:
    await require_stored(ports, NetworkMap, "NetworkMap", name)
    await ports.resources.delete(NetworkMap, name)
    changed(ports, "networkmap", name)


async def delete_storage_map(ports: PlannerPorts, name: str) -> None:
    await require_stored(ports, StorageMap, "StorageMap", name)
    await ports.resources.delete(StorageMap, name)
    changed(ports, "storagemap", name)


async def _network_status(ports: PlannerPorts, network_map: NetworkMap) -> MapStatus:
    source = ports.inventory.source_view(network_map.source_provider)
    return validate_network_map(network_map, source, await target_view(ports, network_map.target_provider))


async def _storage_status(ports: PlannerPorts, storage_map: StorageMap) -> MapStatus:
    source = ports.inventory.source_view(storage_map.source_provider)
    return validate_storage_map(storage_map, source, await target_view(ports, storage_map.target_provider))
