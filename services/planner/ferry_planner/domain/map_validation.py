"""Checks that every reference in a NetworkMap or StorageMap exists."""

from ferry_planner.domain.inventory_view import SourceView, TargetView
from ferry_planner.domain.maps import MapStatus, NetworkDestination, NetworkMap, StorageMap
from ferry_shared.plans import Category, Condition


def _status(conditions: list[Condition]) -> MapStatus:
    ready = not any(c.category is Category.CRITICAL for c in conditions)
    return MapStatus(ready=ready, conditions=tuple(conditions))


def validate_network_map(network_map: NetworkMap, source: SourceView, target: TargetView) -> MapStatus:
    """Every source network must exist; every Multus destination must name an existing NAD."""
    conditions: list[Condition] = []
    for pair in network_map.pairs:
        if not source.find_networks(pair.source):
            conditions.append(
                Condition(
                    type="SourceNetworkNotFound",
                    category=Category.CRITICAL,
                    message=f"source network '{pair.source}' is not in provider '{network_map.source_provider}'",
                )
            )
        if pair.destination is NetworkDestination.MULTUS:
            if "/" not in pair.nad:
                conditions.append(
                    Condition(
                        type="InvalidNetworkAttachment",
                        category=Category.CRITICAL,
                        message=f"multus destination for '{pair.source}' must be 'namespace/name', got '{pair.nad}'",
                    )
                )
            elif not target.has_nad(pair.nad):
                conditions.append(
                    Condition(
                        type="NetworkAttachmentNotFound",
                        category=Category.CRITICAL,
                        message=f"NetworkAttachmentDefinition '{pair.nad}' does not exist on "
                        f"'{network_map.target_provider}'; create it or map '{pair.source}' elsewhere",
                    )
                )
    return _status(conditions)


def validate_storage_map(storage_map: StorageMap, source: SourceView, target: TargetView) -> MapStatus:
    """Every source datastore and every destination StorageClass must exist."""
    conditions: list[Condition] = []
    for pair in storage_map.pairs:
        if not source.find_datastores(pair.source):
            conditions.append(
                Condition(
                    type="SourceDatastoreNotFound",
                    category=Category.CRITICAL,
                    message=f"datastore '{pair.source}' is not in provider '{storage_map.source_provider}'",
                )
            )
        if not target.has_storage_class(pair.storage_class):
            conditions.append(
                Condition(
                    type="StorageClassNotFound",
                    category=Category.CRITICAL,
                    message=f"StorageClass '{pair.storage_class}' does not exist on '{storage_map.target_provider}'",
                )
            )
    return _status(conditions)
