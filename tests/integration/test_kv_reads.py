"""Reading every key of a pattern from a KV bucket on real NATS: patterns, deletes, and a
restarted nats-server; and the inventory's stored connections found again by a restart."""

from ferry_inventory.adapters.connections import ConnectionStore
from ferry_shared import subjects
from ferry_shared.bus.connection import connect
from ferry_shared.bus.kv_watch import read_matching
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.providers import ProviderConnection, ProviderSpec
from ferry_testpeers.plugin import RestartableNats


async def test_every_key_of_a_pattern_is_read_across_a_server_restart(restartable_nats_server: RestartableNats) -> None:
    nc = await connect(restartable_nats_server.url, name="ferry-test", **restartable_nats_server.connect_options())
    kv = await ensure_kv(nc.jetstream(), subjects.PLANNER_BUCKET)
    for index in range(40):
        await kv.put(f"migration.m{index}", b"x" * index)
    await kv.put("plan.p1", b"plan")
    await kv.delete("migration.m3")
    await nc.close()

    restartable_nats_server.restart()
    nc = await connect(restartable_nats_server.url, name="ferry-test", **restartable_nats_server.connect_options())
    try:
        kv = await ensure_kv(nc.jetstream(), subjects.PLANNER_BUCKET)
        found = await read_matching(kv, "migration.>")
        assert sorted(found) == sorted(f"migration.m{i}" for i in range(40) if i != 3)
        assert found["migration.m7"].value == b"x" * 7 and found["migration.m7"].revision > 0
        assert await read_matching(kv, "nothing.>") == {}
    finally:
        await nc.close()


async def test_a_restarted_inventory_finds_every_stored_connection(restartable_nats_server: RestartableNats) -> None:
    nc = await connect(restartable_nats_server.url, name="ferry-test", **restartable_nats_server.connect_options())
    try:
        store = ConnectionStore(await ensure_kv(nc.jetstream(), subjects.INVENTORY_BUCKET))
        for name in ("vcenter", "cluster"):
            spec = ProviderSpec(name=name, type="local", path=f"/{name}")
            await store.put(ProviderConnection(provider=spec, generation=2))
        await store.delete("cluster")
        assert [c.provider.name for c in await store.all()] == ["vcenter"]
    finally:
        await nc.close()
