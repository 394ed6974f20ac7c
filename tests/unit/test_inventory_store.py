"""The ids of the inventory store's events, with a hand-written bucket and publisher: a
change announced again gets the same id (so the stream drops it), different changes
get different ids, also when they look alike."""

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from nats.js.kv import KeyValue

from ferry_inventory.adapters.kv_store import ProviderInventoryStore
from ferry_inventory.domain.index import InventoryIndex
from ferry_shared.inventory import NamespaceRecord
from ferry_shared.messages import Message
from ferry_shared.providers import InventoryChanged, ProviderPhase, ProviderStatus, ProviderStatusChanged


@dataclass
class FakeBucket:
    """A KV bucket whose revision rises with every write, like a stream's sequence."""

    revision: int = 0
    values: dict[str, bytes] = field(default_factory=dict)

    async def put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.values[key] = value
        return self.revision

    async def delete(self, key: str) -> bool:
        self.revision += 1
        self.values.pop(key, None)
        return True

    async def status(self) -> Any:
        return SimpleNamespace(stream_info=SimpleNamespace(state=SimpleNamespace(last_seq=self.revision)))


@dataclass
class FakePublisher:
    published: list[Message] = field(default_factory=list)

    async def publish(self, message: Message) -> object:
        self.published.append(message)
        return None


def store(bucket: FakeBucket, publisher: FakePublisher, generation: int = 1) -> ProviderInventoryStore:
    return ProviderInventoryStore("vc", cast(KeyValue, bucket), publisher, InventoryIndex(), generation=generation)


def ids(publisher: FakePublisher, kind: type[Message]) -> list[str]:
    return [message.message_id for message in publisher.published if isinstance(message, kind)]


READY = ProviderStatus(phase=ProviderPhase.READY, counts={"vm": 3})
CONNECTING = ProviderStatus(phase=ProviderPhase.CONNECTING)


async def test_a_status_reached_again_is_a_new_change_with_a_new_id() -> None:
    publisher = FakePublisher()
    statuses = store(FakeBucket(), publisher)
    for status in (CONNECTING, READY, CONNECTING, READY):
        await statuses.report(status)
    sent = ids(publisher, ProviderStatusChanged)
    assert len(set(sent)) == 4


async def test_the_same_status_at_the_same_revision_gets_the_same_id() -> None:
    first, second = FakePublisher(), FakePublisher()
    await store(FakeBucket(revision=41), first).report(READY)
    await store(FakeBucket(revision=41), second).report(READY)
    assert ids(first, ProviderStatusChanged) == ids(second, ProviderStatusChanged)
    assert ids(first, ProviderStatusChanged)[0].startswith("status:vc:1:42:")


async def test_another_generation_or_status_gets_another_id() -> None:
    publishers = [FakePublisher() for _ in range(3)]
    await store(FakeBucket(revision=41), publishers[0], generation=1).report(READY)
    await store(FakeBucket(revision=41), publishers[1], generation=2).report(READY)
    await store(FakeBucket(revision=41), publishers[2], generation=1).report(CONNECTING)
    assert len({ids(publisher, ProviderStatusChanged)[0] for publisher in publishers}) == 3


async def test_a_record_changed_back_and_forth_gets_a_new_id_each_time() -> None:
    publisher = FakePublisher()
    records = store(FakeBucket(), publisher)
    await records.replace_all([])
    for name in ("a", "b", "a"):
        await records.apply([("namespace", NamespaceRecord(id="ns", name=name))], [])
    await records.apply([], [("namespace", "ns")])
    await records.apply([("namespace", NamespaceRecord(id="ns", name="a"))], [])
    await records.apply([], [("namespace", "ns")])
    sent = ids(publisher, InventoryChanged)
    assert len(sent) == 7
    assert len(set(sent)) == 7


async def test_a_reload_that_changes_nothing_twice_in_a_row_is_one_change() -> None:
    publisher = FakePublisher()
    records = store(FakeBucket(revision=7), publisher)
    await records.replace_all([])
    await records.replace_all([])
    first, second = ids(publisher, InventoryChanged)
    assert first == second  # nothing was written in between: the stream keeps one
