"""Use cases of the planner: providers, maps and plans, and their validation.

The HTTP API calls these; each change is stored in the planner's bucket, announced on
the server-sent-events stream, and triggers revalidation. Revalidation also runs when
the inventory mirror changes.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import TypeVar

import msgspec

from ferry_planner.adapters.broadcast import Broadcaster
from ferry_planner.adapters.inventory_mirror import InventoryMirror
from ferry_planner.adapters.repository import PlannerRepository
from ferry_planner.domain.events import PlanValidated
from ferry_planner.domain.inventory_view import TargetView
from ferry_planner.domain.map_validation import validate_network_map, validate_storage_map
from ferry_planner.domain.maps import MapStatus, NetworkMap, StorageMap
from ferry_planner.domain.plan_validation import PlanContext, validate_plan
from ferry_planner.domain.plans import Plan, PlanStatus
from ferry_planner.domain.providers import ProviderRecord, effective_status
from ferry_planner.domain.views import NetworkMapView, PlanView, ProviderView, StorageMapView
from ferry_planner.handlers.errors import AlreadyExistsError, InvalidError, NotFoundError
from ferry_shared.bus.publisher import Publisher
from ferry_shared.credentials import CredentialStore, Secret
from ferry_shared.dns1123 import is_dns1123_label
from ferry_shared.providers import ConnectProvider, DisconnectProvider, ProviderPhase, ProviderSpec

log = logging.getLogger(__name__)

T = TypeVar("T", ProviderRecord, NetworkMap, StorageMap, Plan)
DEBOUNCE_SECONDS = 0.05


def _check_name(what: str, name: str) -> None:
    if not is_dns1123_label(name):
        raise InvalidError(f"{what} name '{name}' must be a DNS-1123 label (lower-case letters, digits, '-')")


class Planner:
    """The planner's application service."""

    def __init__(
        self,
        repository: PlannerRepository,
        mirror: InventoryMirror,
        credentials: CredentialStore,
        publisher: Publisher,
        broadcaster: Broadcaster,
    ) -> None:
        self._repo = repository
        self._mirror = mirror
        self._credentials = credentials
        self._publisher = publisher
        self.broadcaster = broadcaster
        self._plan_statuses: dict[str, PlanStatus] = {}
        self._dirty = asyncio.Event()
        self._inventory_changed: set[str] = set()
        self._migrated: Callable[[str], Mapping[str, str]] = lambda plan: {}
        mirror.listeners.append(self._inventory_change)

    # --- providers -------------------------------------------------------------------
    async def add_provider(self, spec: ProviderSpec, secret: Secret | None) -> ProviderView:
        _check_name("provider", spec.name)
        _check_provider_spec(spec, secret)
        record = ProviderRecord(spec=spec, generation=1)
        if not await self._repo.create(ProviderRecord, spec.name, record):
            raise AlreadyExistsError("provider", spec.name)
        if secret is not None:
            await self._credentials.put(spec.name, secret)
        await self._publisher.publish(
            ConnectProvider(message_id=f"connect:{spec.name}:{uuid.uuid4()}", provider=spec, generation=1)
        )
        self.changed("provider", spec.name)
        return await self.provider(spec.name)

    async def delete_provider(self, name: str) -> None:
        await self._require(ProviderRecord, "provider", name)
        await self._repo.delete(ProviderRecord, name)
        await self._credentials.delete(name)
        await self._publisher.publish(
            DisconnectProvider(message_id=f"disconnect:{name}:{uuid.uuid4()}", provider_name=name)
        )
        self.changed("provider", name)

    async def provider(self, name: str) -> ProviderView:
        record = await self._require(ProviderRecord, "provider", name)
        return await self._provider_view(record)

    async def providers(self) -> list[ProviderView]:
        return [await self._provider_view(r) for r in await self._repo.list(ProviderRecord)]

    async def _provider_view(self, record: ProviderRecord) -> ProviderView:
        return ProviderView(
            spec=record.spec,
            generation=record.generation,
            has_credentials=await self._credentials.get(record.spec.name) is not None,
            status=effective_status(record, self._mirror.status(record.spec.name)),
        )

    # --- maps --------------------------------------------------------------------------
    async def create_network_map(self, network_map: NetworkMap) -> NetworkMapView:
        _check_name("NetworkMap", network_map.name)
        if not await self._repo.create(NetworkMap, network_map.name, network_map):
            raise AlreadyExistsError("NetworkMap", network_map.name)
        self.changed("networkmap", network_map.name)
        return await self.network_map(network_map.name)

    async def create_storage_map(self, storage_map: StorageMap) -> StorageMapView:
        _check_name("StorageMap", storage_map.name)
        if not await self._repo.create(StorageMap, storage_map.name, storage_map):
            raise AlreadyExistsError("StorageMap", storage_map.name)
        self.changed("storagemap", storage_map.name)
        return await self.storage_map(storage_map.name)

    async def network_map(self, name: str) -> NetworkMapView:
        found = await self._require(NetworkMap, "NetworkMap", name)
        return NetworkMapView(map=found, status=await self._network_map_status(found))

    async def storage_map(self, name: str) -> StorageMapView:
        found = await self._require(StorageMap, "StorageMap", name)
        return StorageMapView(map=found, status=await self._storage_map_status(found))

    async def network_maps(self) -> list[NetworkMapView]:
        found = await self._repo.list(NetworkMap)
        return [NetworkMapView(map=m, status=await self._network_map_status(m)) for m in found]

    async def storage_maps(self) -> list[StorageMapView]:
        found = await self._repo.list(StorageMap)
        return [StorageMapView(map=m, status=await self._storage_map_status(m)) for m in found]

    async def delete_network_map(self, name: str) -> None:
        await self._require(NetworkMap, "NetworkMap", name)
        await self._repo.delete(NetworkMap, name)
        self.changed("networkmap", name)

    async def delete_storage_map(self, name: str) -> None:
        await self._require(StorageMap, "StorageMap", name)
        await self._repo.delete(StorageMap, name)
        self.changed("storagemap", name)

    async def _network_map_status(self, network_map: NetworkMap) -> MapStatus:
        target = await self._target_view(network_map.target_provider)
        return validate_network_map(network_map, self._mirror.source_view(network_map.source_provider), target)

    async def _storage_map_status(self, storage_map: StorageMap) -> MapStatus:
        target = await self._target_view(storage_map.target_provider)
        return validate_storage_map(storage_map, self._mirror.source_view(storage_map.source_provider), target)

    async def _target_view(self, provider: str) -> TargetView:
        record = await self._repo.get(ProviderRecord, provider)
        checked = record is None or record.spec.type != "local"
        return self._mirror.target_view(provider, checked=checked)

    # --- plans -------------------------------------------------------------------------
    async def create_plan(self, plan: Plan) -> PlanView:
        _check_name("plan", plan.name)
        if not await self._repo.create(Plan, plan.name, plan):
            raise AlreadyExistsError("plan", plan.name)
        self.changed("plan", plan.name)
        return await self.plan(plan.name)

    async def delete_plan(self, name: str) -> None:
        await self._require(Plan, "plan", name)
        await self._repo.delete(Plan, name)
        self._plan_statuses.pop(name, None)
        self.changed("plan", name)

    async def plan(self, name: str) -> PlanView:
        found = await self._require(Plan, "plan", name)
        return PlanView(plan=found, status=await self._validate(found))

    async def plans(self) -> list[PlanView]:
        return [PlanView(plan=p, status=await self._validate(p)) for p in await self._repo.list(Plan)]

    async def _validate(self, plan: Plan) -> PlanStatus:
        source_record = await self._repo.get(ProviderRecord, plan.source_provider)
        target_record = await self._repo.get(ProviderRecord, plan.target_provider)
        ctx = PlanContext(
            source=self._mirror.source_view(plan.source_provider) if source_record else None,
            target=await self._target_view(plan.target_provider) if target_record else None,
            network_map=await self._repo.get(NetworkMap, plan.network_map),
            storage_map=await self._repo.get(StorageMap, plan.storage_map),
            source_ready=self._ready(source_record),
            target_ready=self._ready(target_record),
            migrated=self._migrated(plan.name),
        )
        return validate_plan(plan, ctx)

    def _ready(self, record: ProviderRecord | None) -> bool:
        if record is None:
            return False
        return effective_status(record, self._mirror.status(record.spec.name)).phase is ProviderPhase.READY

    # --- change propagation ----------------------------------------------------------
    def _inventory_change(self, provider: str) -> None:
        """Inventory records change in bursts (a load writes thousands): note the provider
        and let the debounced revalidation announce it once."""
        self._inventory_changed.add(provider)
        self._dirty.set()

    def use_migration_history(self, migrated: Callable[[str], Mapping[str, str]]) -> None:
        """Where validation learns which VMs of a plan were already migrated (VM id → migration)."""
        self._migrated = migrated

    def revalidate_soon(self) -> None:
        """Schedule revalidation of every plan (a VM finished migrating)."""
        self._dirty.set()

    def changed(self, kind: str, name: str) -> None:
        """Announce a change and schedule revalidation of every plan."""
        self.broadcaster.publish({"kind": kind, "name": name})
        self._dirty.set()

    async def revalidate_forever(self, stop: asyncio.Event) -> None:
        """Revalidate plans after changes (debounced) until ``stop``; publish what changed."""
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                dirty = asyncio.create_task(self._dirty.wait())
                await asyncio.wait({dirty, stopping}, return_when=asyncio.FIRST_COMPLETED)
                dirty.cancel()
                if stop.is_set():
                    break
                await asyncio.sleep(DEBOUNCE_SECONDS)
                self._dirty.clear()
                for provider in sorted(self._inventory_changed):
                    self.broadcaster.publish({"kind": "inventory", "name": provider})
                self._inventory_changed.clear()
                await self._revalidate_all()
        finally:
            stopping.cancel()

    async def _revalidate_all(self) -> None:
        for plan in await self._repo.list(Plan):
            status = await self._validate(plan)
            if self._plan_statuses.get(plan.name) == status:
                continue
            self._plan_statuses[plan.name] = status
            self.broadcaster.publish(
                {
                    "kind": "plan_status",
                    "name": plan.name,
                    "ready": status.ready,
                    "status": msgspec.to_builtins(status),
                }
            )
            await self._publisher.publish(
                PlanValidated(message_id=f"plan:{plan.name}:{uuid.uuid4()}", plan_name=plan.name, status=status)
            )

    async def _require(self, kind: type[T], what: str, name: str) -> T:
        found = await self._repo.get(kind, name)
        if found is None:
            raise NotFoundError(what, name)
        return found


def _check_provider_spec(spec: ProviderSpec, secret: Secret | None) -> None:
    if spec.type == "vsphere":
        if not spec.url or not spec.username:
            raise InvalidError("a vsphere provider needs url and username")
        if secret is None:
            raise InvalidError("a vsphere provider needs a password")
        if not (spec.ca_bundle or spec.thumbprint or spec.insecure):
            raise InvalidError("say how to trust the vCenter's certificate: ca_bundle, thumbprint, or insecure=true")
    elif spec.type == "kubernetes":
        if secret is None and not spec.in_cluster:
            raise InvalidError("a kubernetes provider needs a kubeconfig, or in_cluster=true")
    elif spec.type == "local" and not spec.path:
        raise InvalidError("a local provider needs a path")
