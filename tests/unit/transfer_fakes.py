"""Hand-written fakes behind the transfer handlers' ports: memory disks, a CAS checkpoint store, a publisher."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from ferry_shared.messages import Message
from ferry_shared.migrations import SinkLocation, SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_transfer.domain.checkpoint import Change, DiskRecord
from ferry_transfer.domain.copies import DiskId
from ferry_transfer.domain.errors import CheckpointMissing, SinkUnavailable
from ferry_transfer.domain.ports import Buffer, DiskSink, DiskSource
from ferry_transfer.domain.ranges import Extent


class MemorySource:
    """A source disk in memory; records every read; ``gate`` holds reads until set."""

    def __init__(self, data: bytes, *, fail: Exception | None = None, gate: asyncio.Event | None = None) -> None:
        self.data = data
        self.fail = fail
        self.gate = gate
        self.reads: list[tuple[int, int]] = []

    async def read(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.data[offset : offset + length]

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        buffer[:] = await self.read(offset, buffer.nbytes)

    @property
    def bytes_read(self) -> int:
        return sum(length for _, length in self.reads)


class MemorySink:
    """A target disk in memory, starting as ``fill`` bytes; writes at ``garble`` land corrupted ``garble_times``."""

    def __init__(
        self, size: int, *, fill: int = 0, garble: int | None = None, garble_times: int = 0, blocking: bool = False
    ) -> None:
        self.data = bytearray([fill]) * size
        self._blocking = MemoryBlockingSink(self) if blocking else None
        self.garble = garble
        self.garble_times = garble_times
        self.fail: Exception | None = None
        self.finished = 0
        self.zeroed: list[tuple[int, int]] = []
        self.writes: list[tuple[int, int]] = []
        self.open = 0

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def blocking(self) -> "MemoryBlockingSink | None":
        return self._blocking

    async def write(self, offset: int, data: Buffer) -> None:
        self.write_now(offset, data)

    def write_now(self, offset: int, data: Buffer) -> None:
        if self.fail is not None:
            raise self.fail
        payload = bytes(data)
        self.writes.append((offset, len(payload)))
        if offset == self.garble and self.garble_times:
            self.garble_times -= 1
            payload = bytes(b ^ 0xFF for b in payload[:16]) + payload[16:]
        self.data[offset : offset + len(payload)] = payload

    async def zero(self, offset: int, length: int) -> None:
        self.zeroed.append((offset, length))
        self.data[offset : offset + length] = bytes(length)

    async def finish(self) -> None:
        self.finished += 1

    async def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    async def reads_zero(self, offset: int, length: int) -> bool:
        return not any(self.data[offset : offset + length])


class MemoryBlockingSink:
    """A :class:`MemorySink`'s blocking calls (as a local file offers them)."""

    def __init__(self, sink: MemorySink) -> None:
        self.sink = sink
        self.calls = 0

    def write_sync(self, offset: int, data: Buffer) -> None:
        self.calls += 1
        self.sink.write_now(offset, data)

    def zero_sync(self, offset: int, length: int) -> None:
        self.calls += 1
        self.sink.zeroed.append((offset, length))
        self.sink.data[offset : offset + length] = bytes(length)

    def read_into_sync(self, offset: int, buffer: memoryview) -> None:
        self.calls += 1
        buffer[:] = self.sink.data[offset : offset + buffer.nbytes]

    def reads_zero_sync(self, offset: int, length: int) -> bool:
        self.calls += 1
        return not any(self.sink.data[offset : offset + length])


@dataclass
class Readers:
    """The source port: one memory disk for every (provider, disk)."""

    source: MemorySource
    fail: Exception | None = None
    opened: int = 0
    asked: list[tuple[ProviderSpec, SourceDisk]] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def reader(self, provider: ProviderSpec, disk: SourceDisk) -> AsyncIterator[DiskSource]:
        if self.fail is not None:
            raise self.fail
        self.opened += 1
        self.asked.append((provider, disk))
        yield self.source


@dataclass
class Sinks:
    """The sink port over one memory disk; ``prepared`` records each prepare's zero parts, ``opened`` each
    location opened."""

    sink: MemorySink
    fail: Exception | None = None
    prepared: list[list[Extent]] = field(default_factory=list)
    opened: list[SinkLocation] = field(default_factory=list)

    async def prepare(self, location: SinkLocation, capacity: int, zero: Sequence[Extent]) -> None:
        if self.fail is not None:
            raise self.fail
        if self.sink.size < capacity:
            raise SinkUnavailable("sink_too_small", f"the sink holds {self.sink.size} bytes", retryable=False)
        self.prepared.append(list(zero))
        for part in zero:
            await self.sink.zero(part.offset, part.length)

    @contextlib.asynccontextmanager
    async def open(self, location: SinkLocation) -> AsyncIterator[DiskSink]:
        if self.fail is not None:
            raise self.fail
        self.opened.append(location)
        self.sink.open += 1
        try:
            yield self.sink
        finally:
            self.sink.open -= 1


@dataclass
class Cbt:
    extents: list[Extent] | None = None
    asked: int = 0

    async def allocated(self, provider: ProviderSpec, vm_id: str, disk: SourceDisk) -> list[Extent] | None:
        self.asked += 1
        return self.extents


class MemoryCheckpoints:
    """The checkpoint port in memory with compare-and-set; ``interfere`` runs once between a read and its write."""

    def __init__(self) -> None:
        self.records: dict[DiskId, DiskRecord] = {}
        self.digest_store: dict[tuple[DiskId, int], bytes] = {}
        self.interfere: Change | None = None
        self.conflicts = 0

    async def load(self, disk: DiskId) -> DiskRecord | None:
        await asyncio.sleep(0)
        return self.records.get(disk)

    async def create(self, disk: DiskId, record: DiskRecord) -> DiskRecord:
        return self.records.setdefault(disk, record)

    async def change(self, disk: DiskId, change: Change) -> tuple[DiskRecord, DiskRecord | None]:
        while True:
            current = self.records.get(disk)
            if current is None:
                raise CheckpointMissing(f"no checkpoint for {disk}")
            updated = change(current)
            await asyncio.sleep(0)
            if self.interfere is not None:  # another worker's update lands first
                interfering, self.interfere = self.interfere, None
                if (other := interfering(current)) is not None:
                    self.records[disk] = other
            if self.records[disk] is not current:
                self.conflicts += 1
                continue
            if updated is not None:
                self.records[disk] = updated
            return current, updated

    async def put_digest(self, disk: DiskId, index: int, digest: bytes) -> None:
        self.digest_store[(disk, index)] = digest

    async def digests(self, disk: DiskId) -> dict[int, bytes]:
        return {index: digest for (key, index), digest in self.digest_store.items() if key == disk}


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
