"""Fills the in-memory index from the KV bucket at start-up, so a restarted service
knows what it stored before (and can delete what vanished while it was down)."""

import msgspec
from nats.js.kv import KeyValue

from ferry_inventory.domain.index import InventoryIndex
from ferry_inventory.domain.ports import KindAndRecord
from ferry_shared.bus.kv_watch import read_all
from ferry_shared.inventory import RECORD_TYPES, STATUS_PREFIX, parse_inventory_key
from ferry_shared.providers import ProviderStatus


async def load_index(kv: KeyValue, index: InventoryIndex) -> None:
    """Load every record and status in the bucket into ``index``."""
    by_provider: dict[str, list[KindAndRecord]] = {}
    for key, value in (await read_all(kv)).items():
        if key.startswith(f"{STATUS_PREFIX}."):
            index.set_status(key.split(".", 1)[1], msgspec.json.decode(value, type=ProviderStatus))
            continue
        parsed = parse_inventory_key(key)
        if parsed is None:
            continue
        provider, kind, _ = parsed
        record = msgspec.json.decode(value, type=RECORD_TYPES[kind])
        by_provider.setdefault(provider, []).append((kind, record))
    for provider, records in by_provider.items():
        index.replace_all(provider, records)
