"""The transfer's handler table and its handlers' ports, with hand-written fakes only: both
commands are bound to their dependencies, the range copier is the one given, and the
domain's errors (whoever raises them) become the step errors they stand for."""

import errno
from dataclasses import dataclass, field
from typing import Any

import pytest

from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.migrations import CopyDisk, CopyRange, DiskCopied, SinkLocation, SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_transfer.adapters.cancellation import CancellationRegistry
from ferry_transfer.domain.checkpoint import RangeCounts
from ferry_transfer.domain.copies import DiskId, RangeCopy
from ferry_transfer.domain.disk_plan import RangeWork
from ferry_transfer.domain.errors import RangeMismatch, SinkConnectionLost, SinkRequestRefused
from ferry_transfer.domain.ports import CopyPorts, DiskSink, DiskSource
from ferry_transfer.handlers import CopyOptions, RangeOptions, handler_table

from .transfer_fakes import Cbt, Delivery, MemoryCheckpoints, MemorySink, MemorySource, Publisher, Readers, Sinks

KiB = 1024
RANGE = 64 * KiB
SIZE = 3 * RANGE
DISK = DiskId("m1", "vm-1", 2000)


class Refused(SinkRequestRefused):
    """A sink that refuses a request with ``errno`` (as an NBD server's error reply does)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"refused with {code}")
        self.errno = code


@dataclass
class Copier:
    """The range copier port: copies nothing, returns one digest per range, or raises ``fail``."""

    fail: Exception | None = None
    calls: list[tuple[int, int]] = field(default_factory=list)

    async def __call__(self, source: DiskSource, sink: DiskSink, work: RangeWork, *, chunk_size: int) -> RangeCopy:
        self.calls.append((work.index, chunk_size))
        if self.fail is not None:
            raise self.fail
        return RangeCopy(bytes([work.index]) * 32, RangeCounts(work.length, work.length, 0), attempts=1)


@dataclass
class Service:
    copier: Copier
    checkpoints: MemoryCheckpoints
    publisher: Publisher
    table: Any  # the HandlerTable, called here with the fake delivery

    async def handle(self, message: CopyDisk | CopyRange) -> None:
        await self.table[type(message)](message, Delivery())

    async def copy_every_range(self) -> None:
        for command in [m for m in self.publisher.messages if isinstance(m, CopyRange)]:
            await self.handle(command)


def wired(copier: Copier | None = None) -> Service:
    copier = copier or Copier()
    checkpoints, publisher = MemoryCheckpoints(), Publisher()
    ports = CopyPorts(
        sources=Readers(MemorySource(bytes(SIZE))),
        sinks=Sinks(MemorySink(SIZE)),
        checkpoints=checkpoints,
        publisher=publisher,
        cancellations=CancellationRegistry(),
        clock=lambda: 1_000_000.0,
    )
    table = handler_table(
        ports,
        cbt=Cbt(),
        copier=copier,
        disk=CopyOptions(range_size=RANGE),
        ranges=RangeOptions(chunk_size=RANGE, progress_interval=1.0),
    )
    return Service(copier, checkpoints, publisher, table)


def copy_disk() -> CopyDisk:
    return CopyDisk(
        message_id="m1:vm-1:copy_disk:2000",
        migration="m1",
        vm_id="vm-1",
        source=ProviderSpec(name="vc", type="vsphere", url="https://vc.example.com/sdk", username="u"),
        disk=SourceDisk(key=2000, file_name="[ds1] vm-1/vm-1.vmdk", datacenter="DC0", capacity_bytes=SIZE),
        sink=SinkLocation(disk_key=2000, kind="file", size_bytes=SIZE, path="/targets/vm-1.raw"),
    )


async def test_the_table_handles_both_commands_with_the_copier_it_was_given() -> None:
    service = wired()
    await service.handle(copy_disk())
    await service.copy_every_range()

    assert service.copier.calls == [(0, RANGE), (1, RANGE), (2, RANGE)]
    record = service.checkpoints.records[DISK]
    assert record.finished and record.bytes_read == SIZE
    assert [m.disk_key for m in service.publisher.of(DiskCopied)] == [2000]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("error", "expected", "code", "says"),
    [
        (Refused(errno.EROFS), PermanentError, "sink_write_failed", "refused a request"),
        (Refused(errno.EAGAIN), TemporaryError, "sink_write_failed", "refused a request"),
        (SinkConnectionLost("reset"), TemporaryError, "sink_connection_lost", "broke"),
        (RangeMismatch(RangeWork(0, 0, RANGE), 4096, 2), PermanentError, "checksum_mismatch", "at offset 4096"),
    ],
)
async def test_the_domains_copy_errors_become_step_errors(
    error: Exception, expected: type[Exception], code: str, says: str
) -> None:
    service = wired(Copier(fail=error))
    await service.handle(copy_disk())
    with pytest.raises(expected) as caught:
        await service.copy_every_range()
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert says in caught.value.message  # type: ignore[attr-defined]
    assert service.checkpoints.records[DISK].bytes_done == 0
