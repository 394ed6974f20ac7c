"""The in-memory inventory of every connected provider, and the queries over it."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ferry_inventory.domain.ports import KindAndId, KindAndRecord
from ferry_shared.inventory import Record, VmRecord
from ferry_shared.providers import ProviderStatus


@dataclass(frozen=True)
class VmFilter:
    """Optional VM query filters (all given ones must match)."""

    name: str | None = None  # substring, case-insensitive
    power_state: str | None = None
    host: str | None = None  # host name or id
    datastore: str | None = None  # datastore name or id of any disk
    network: str | None = None  # network name or id of any NIC

    def matches(self, vm: VmRecord) -> bool:
        if self.name and self.name.lower() not in vm.name.lower():
            return False
        if self.power_state and vm.power_state != self.power_state:
            return False
        if self.host and self.host not in (vm.host_id, vm.host_name):
            return False
        if self.datastore and not any(self.datastore in (d.datastore_id, d.datastore_name) for d in vm.disks):
            return False
        return not self.network or any(self.network in (n.network_id, n.network_name) for n in vm.nics)


class InventoryIndex:
    """Records per provider and kind, plus each provider's last status."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, dict[str, Record]]] = {}
        self._statuses: dict[str, ProviderStatus] = {}

    def providers(self) -> list[str]:
        return sorted(set(self._records) | set(self._statuses))

    def status(self, provider: str) -> ProviderStatus | None:
        return self._statuses.get(provider)

    def set_status(self, provider: str, status: ProviderStatus) -> None:
        self._statuses[provider] = status

    def replace_all(self, provider: str, records: Iterable[KindAndRecord]) -> None:
        fresh: dict[str, dict[str, Record]] = {}
        for kind, record in records:
            fresh.setdefault(kind, {})[record.id] = record
        self._records[provider] = fresh

    def apply(self, provider: str, put: Sequence[KindAndRecord], deleted: Sequence[KindAndId]) -> None:
        kinds = self._records.setdefault(provider, {})
        for kind, record in put:
            kinds.setdefault(kind, {})[record.id] = record
        for kind, identifier in deleted:
            kinds.get(kind, {}).pop(identifier, None)

    def forget(self, provider: str) -> None:
        self._records.pop(provider, None)
        self._statuses.pop(provider, None)

    def keys(self, provider: str) -> set[KindAndId]:
        return {(kind, rid) for kind, records in self._records.get(provider, {}).items() for rid in records}

    def records(self, provider: str, kind: str) -> list[Record]:
        records = self._records.get(provider, {}).get(kind, {})
        return sorted(records.values(), key=lambda r: (r.name, r.id))

    def get(self, provider: str, kind: str, identifier: str) -> Record | None:
        return self._records.get(provider, {}).get(kind, {}).get(identifier)

    def counts(self, provider: str) -> dict[str, int]:
        return {kind: len(records) for kind, records in self._records.get(provider, {}).items()}

    def vms(self, provider: str, query: VmFilter) -> list[VmRecord]:
        return [vm for vm in self.records(provider, "vm") if isinstance(vm, VmRecord) and query.matches(vm)]
