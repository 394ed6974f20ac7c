"""The CopyDisk use case with hand-written fakes behind its ports: events, repairs, cancellation, error mapping."""

import asyncio
import contextlib
import errno
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.messages import Message
from ferry_shared.migrations import (
    CopyDisk,
    DiskCopied,
    DiskCopyCanceled,
    DiskCopyProgress,
    DiskSink,
    SourceDisk,
    step_id,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.errors import INVALID_LOGIN, UNREACHABLE, ProviderError
from ferry_testpeers.waiting import eventually
from ferry_transfer.adapters.cancellation import CancellationRegistry
from ferry_transfer.adapters.copier import DiskSource
from ferry_transfer.adapters.datastore import SourceReadError
from ferry_transfer.adapters.nbd import NbdConnectionError
from ferry_transfer.adapters.sink_factory import SinkUnavailable
from ferry_transfer.adapters.sinks import Buffer
from ferry_transfer.adapters.sinks import DiskSink as SinkPort
from ferry_transfer.handlers import CopyDiskHandler, CopyOptions

KiB = 1024
SIZE = 256 * KiB
RANGE = 64 * KiB
PASSWORD = "s3cret-Pa55"


class MemorySource:
    def __init__(self, data: bytes, *, fail: Exception | None = None, gate: asyncio.Event | None = None) -> None:
        self.data = data
        self.fail = fail
        self.gate = gate
        self.reads = 0

    async def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.data[offset : offset + length]


class MemorySink:
    """A target disk in memory; ``garble`` lists offsets whose next ``garble_times`` writes land corrupted."""

    def __init__(self, size: int, *, garble: int | None = None, garble_times: int = 0) -> None:
        self.data = bytearray(size)
        self.garble = garble
        self.garble_times = garble_times
        self.closed = False
        self.finished = 0
        self.fail: Exception | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    async def write(self, offset: int, data: Buffer) -> None:
        if self.fail is not None:
            raise self.fail
        payload = bytes(data)
        if offset == self.garble and self.garble_times:
            self.garble_times -= 1
            payload = bytes(b ^ 0xFF for b in payload)
        self.data[offset : offset + len(payload)] = payload

    async def zero(self, offset: int, length: int) -> None:
        self.data[offset : offset + length] = bytes(length)

    async def finish(self) -> None:
        self.finished += 1

    async def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])


@dataclass
class Sources:
    source: MemorySource
    fail: Exception | None = None
    opened: list[int] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def open(self, provider: ProviderSpec, disk: SourceDisk, connections: int) -> AsyncIterator[DiskSource]:
        self.opened.append(connections)
        if self.fail is not None:
            raise self.fail
        yield self.source


@dataclass
class Sinks:
    sink: MemorySink
    fail: Exception | None = None

    @contextlib.asynccontextmanager
    async def open(self, spec: DiskSink) -> AsyncIterator[SinkPort]:
        if self.fail is not None:
            raise self.fail
        try:
            yield self.sink
        finally:
            self.sink.closed = True


class Publisher:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def publish(self, message: Message) -> object:
        self.messages.append(message)
        return None

    def of(self, kind: type[Message]) -> list[Message]:
        return [message for message in self.messages if isinstance(message, kind)]


class Delivery:
    def __init__(self) -> None:
        self.leased = False

    @contextlib.asynccontextmanager
    async def lease(self, interval: float | None = None) -> AsyncIterator[None]:
        self.leased = True
        try:
            yield
        finally:
            self.leased = False


@dataclass
class World:
    data: bytes
    source: MemorySource
    sink: MemorySink
    sources: Sources
    sinks: Sinks
    publisher: Publisher
    registry: CancellationRegistry
    handler: CopyDiskHandler


def make_world(*, sink: MemorySink | None = None, source: MemorySource | None = None) -> World:
    rng = random.Random(4)
    data = bytearray(rng.randbytes(SIZE))
    data[RANGE : 2 * RANGE] = bytes(RANGE)  # one zero range
    memory_source = source or MemorySource(bytes(data))
    memory_sink = sink or MemorySink(SIZE)
    sources, sinks, publisher = Sources(memory_source), Sinks(memory_sink), Publisher()
    registry = CancellationRegistry()
    handler = CopyDiskHandler(
        sources=sources,
        sinks=sinks,
        publisher=publisher,
        cancellations=registry,
        options=CopyOptions(requests_in_flight=2, range_size=RANGE, progress_interval=0.01),
    )
    return World(memory_source.data, memory_source, memory_sink, sources, sinks, publisher, registry, handler)


def command(*, source_type: str = "vsphere", size: int = SIZE) -> CopyDisk:
    return CopyDisk(
        message_id="m1:vm-1:copy_disk:2000",
        migration="m1",
        vm_id="vm-1",
        source=ProviderSpec(name="vc", type=source_type, url="https://vc.example.com/sdk", username="u"),  # type: ignore[arg-type]
        disk=SourceDisk(key=2000, file_name="[ds1] vm-1/vm-1.vmdk", datacenter="DC0", capacity_bytes=size),
        sink=DiskSink(disk_key=2000, kind="file", size_bytes=size, path="/targets/vm-1.raw"),
    )


async def test_copies_the_disk_and_publishes_progress_then_copied() -> None:
    world = make_world()
    delivery = Delivery()
    await world.handler(command(), delivery)
    assert bytes(world.sink.data) == world.data
    assert world.sink.closed and not delivery.leased
    assert world.sources.opened == [2]
    copied = world.publisher.messages[-1]
    assert isinstance(copied, DiskCopied)
    assert copied.message_id == step_id("m1", "vm-1", "disk_copied", 2000)
    assert (copied.bytes_total, copied.bytes_read, copied.bytes_written) == (SIZE, SIZE, SIZE - RANGE)
    assert copied.zero_bytes_skipped == RANGE
    progress = [m for m in world.publisher.messages if isinstance(m, DiskCopyProgress)]
    assert progress and progress[-1].bytes_done == SIZE
    assert [p.bytes_done for p in progress] == sorted({p.bytes_done for p in progress})
    assert all(p.message_id == step_id("m1", "vm-1", "progress", 2000, p.bytes_done) for p in progress)
    assert world.publisher.messages.index(progress[-1]) < world.publisher.messages.index(copied)


async def test_a_range_that_landed_wrong_is_copied_again_once() -> None:
    world = make_world(sink=MemorySink(SIZE, garble=3 * RANGE, garble_times=1))
    await world.handler(command(), Delivery())
    assert bytes(world.sink.data) == world.data
    assert world.sink.finished == 2
    assert world.source.reads == SIZE // RANGE + 1  # every range, and the wrong one again
    copied = world.publisher.of(DiskCopied)
    assert len(copied) == 1


async def test_a_range_that_keeps_landing_wrong_fails_the_command() -> None:
    world = make_world(sink=MemorySink(SIZE, garble=0, garble_times=2))
    with pytest.raises(PermanentError) as caught:
        await world.handler(command(), Delivery())
    assert caught.value.code == "checksum_mismatch"
    assert "target differs from the source in 1 range(s) at offsets 0" in caught.value.message
    assert "/targets/vm-1.raw" in caught.value.message
    assert not world.publisher.of(DiskCopied)
    assert world.sink.closed


async def test_a_cancelled_vm_is_not_copied() -> None:
    world = make_world()
    world.registry.cancel("m1", "vm-1")
    await world.handler(command(), Delivery())
    assert world.sources.opened == []
    assert [type(m) for m in world.publisher.messages] == [DiskCopyCanceled]
    assert world.publisher.messages[0].message_id == step_id("m1", "vm-1", "disk_copy_canceled", 2000)


async def test_cancelling_mid_copy_stops_it_and_closes_the_sink() -> None:
    gate = asyncio.Event()
    world = make_world(source=MemorySource(bytes(SIZE), gate=gate))
    delivery = Delivery()
    handling = asyncio.ensure_future(world.handler(command(), delivery))
    await eventually(lambda: world.source.reads > 0, timeout=1, what="the copy reading")
    assert delivery.leased and world.registry.copies_in_flight == 1
    world.registry.cancel("m1", "vm-1")
    await asyncio.wait_for(handling, 1)
    assert [type(m) for m in world.publisher.messages] == [DiskCopyCanceled]
    assert world.sink.closed and not delivery.leased
    assert world.registry.copies_in_flight == 0


async def test_a_cancellation_of_another_vm_does_not_stop_the_copy() -> None:
    world = make_world()
    world.registry.cancel("m1", "vm-2")
    world.registry.cancel("m2", "vm-1")
    await world.handler(command(), Delivery())
    assert world.publisher.of(DiskCopied)


async def test_a_sink_smaller_than_the_disk_is_refused() -> None:
    world = make_world(sink=MemorySink(SIZE // 2))
    with pytest.raises(PermanentError) as caught:
        await world.handler(command(), Delivery())
    assert caught.value.code == "sink_too_small"
    assert f"holds {SIZE // 2} bytes but disk 2000" in caught.value.message


async def test_only_vsphere_sources_are_copied() -> None:
    world = make_world()
    with pytest.raises(PermanentError, match="from a kubernetes provider"):
        await world.handler(command(source_type="kubernetes"), Delivery())


LOGIN_REFUSED = ProviderError(
    INVALID_LOGIN, "vCenter at vc:443 refused the user name 'u' or its password; check both and update the provider"
)


@pytest.mark.parametrize(
    ("where", "error", "expected", "code"),
    [
        ("sources", LOGIN_REFUSED, PermanentError, INVALID_LOGIN),
        ("sources", ProviderError(UNREACHABLE, "vc:443 refused the connection"), TemporaryError, UNREACHABLE),
        (
            "sources",
            SourceReadError("404 Not Found", url="u", status=404, code="disk_not_found"),
            PermanentError,
            "disk_not_found",
        ),
        (
            "read",
            SourceReadError("503 busy", url="u", status=503, retryable=True),
            TemporaryError,
            "source_read_failed",
        ),
        (
            "sinks",
            SinkUnavailable("sink_unreachable", "not listening", retryable=True),
            TemporaryError,
            "sink_unreachable",
        ),
        ("sinks", SinkUnavailable("sink_missing", "no directory", retryable=False), PermanentError, "sink_missing"),
        ("write", NbdConnectionError("connection reset"), TemporaryError, "sink_connection_lost"),
        ("write", OSError(errno.ENOSPC, "No space left on device"), PermanentError, "sink_write_failed"),
        ("write", OSError(errno.EIO, "Input/output error"), TemporaryError, "sink_write_failed"),
    ],
)
async def test_failures_become_permanent_or_temporary_errors(
    where: str, error: Exception, expected: type[Exception], code: str
) -> None:
    world = make_world()
    if where == "sources":
        world.sources.fail = error
    elif where == "read":
        world.source.fail = error
    elif where == "sinks":
        world.sinks.fail = error
    else:
        world.sink.fail = error
    with pytest.raises(expected) as caught:
        await world.handler(command(), Delivery())
    mapped = caught.value
    assert isinstance(mapped, PermanentError | TemporaryError)
    assert type(mapped) is expected
    assert mapped.code == code
    assert mapped.message.startswith("copying disk 2000 ([ds1] vm-1/vm-1.vmdk) of VM vm-1: ")
    assert PASSWORD not in mapped.message
    assert not world.publisher.of(DiskCopied)
    assert world.registry.copies_in_flight == 0
