"""The transfer service in one process end to end: real NATS, ferry-vcsim, qemu-nbd and nbdkit.

The service is wired by its own ``bootstrap`` and runs behind the real ``DurableConsumer``
on the transfer's command subject, with its background jobs (the cancellation listener):
``CopyDisk`` plans the disk and puts its ``CopyRange`` commands on the same queue, which
the same consumer then copies (worker processes: ``test_transfer_ranges.py``).
Commands go in with the bus publisher; every event on ``ferry.evt.>`` is collected through
a core subscription. The simulator's flat files hold documented content, so each test
compares the target with the file the simulator serves.
"""

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
import pytest_asyncio
from nats.aio.msg import Msg

from ferry_peers.inventory_desk import inventory_desk, store_password
from ferry_peers.nats_server import NatsServer
from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_peers.vcsim import Vcsim
from ferry_shared import subjects
from ferry_shared.bus.consumer import ConsumerSpec, DurableConsumer
from ferry_shared.credentials import Secret
from ferry_shared.messages import Message, MessageFailed, StepRef, decoder_for
from ferry_shared.migrations import (
    CopyDisk,
    DiskCopied,
    DiskCopyCanceled,
    DiskCopyProgress,
    SinkLocation,
    SourceDisk,
    VmCancelRequested,
    step_id,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus, Wired
from ferry_shared.settings import ServiceSettings
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import async_wait_for, eventually
from ferry_transfer.adapters.nbd import NbdClient
from ferry_transfer.adapters.sink_factory import SinkFactory, SinkOptions
from ferry_transfer.bootstrap import TransferApi, bootstrap
from ferry_transfer.domain.checksum import disk_checksum
from ferry_transfer.domain.errors import SinkUnavailable
from ferry_transfer.settings import TransferSettings

pytestmark = [pytest.mark.vsphere, pytest.mark.nats]

MiB = 1024 * 1024
RANGE = MiB
SPARSE_EXTENTS = [(0, MiB), (20 * MiB, 2 * MiB), (50 * MiB, 192 * 1024)]  # on 64 KiB zero-detection blocks
MODEL = {
    "datacenters": [
        {
            "name": "DC0",
            "datastores": [{"name": "LocalDS_0"}],
            "clusters": [{"name": "C0", "hosts": [{"name": "H0"}]}],
            "vms": [
                {"name": "dense", "disks": [{"capacity": "24MiB", "content": {"kind": "random", "seed": 11}}]},
                {
                    "name": "sparse",
                    "disks": [
                        {
                            "capacity": "64MiB",
                            "content": {
                                "kind": "extents",
                                "seed": 5,
                                "extents": [{"offset": o, "length": n} for o, n in SPARSE_EXTENTS],
                            },
                        }
                    ],
                },
                {"name": "blank", "disks": [{"capacity": "32MiB"}]},
            ],
        }
    ]
}
EVENT_TYPES: list[type[Message]] = [DiskCopied, DiskCopyProgress, DiskCopyCanceled, MessageFailed, VmCancelRequested]
E = TypeVar("E", bound=Message)


@dataclass
class Disk:
    vm: str
    spec: SourceDisk
    path_on_disk: Path


@dataclass
class Harness:
    bus: Bus
    simulator: Vcsim
    service: Wired[TransferApi]
    provider: ProviderSpec
    events: list[Message] = field(default_factory=list)
    raw_events: list[bytes] = field(default_factory=list)

    def disk(self, vm: str) -> Disk:
        info = httpx.get(f"{self.simulator.control_url}/vms/{vm}").json()["disks"][0]
        spec = SourceDisk(key=info["key"], file_name=info["file"], datacenter="DC0", capacity_bytes=info["capacity"])
        return Disk(vm, spec, Path(info["path_on_disk"]))

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.simulator.control_url}{path}", json=body)
        response.raise_for_status()
        return response.json()

    async def copy(
        self, disk: Disk, sink: SinkLocation, *, migration: str = "m1", provider: ProviderSpec | None = None
    ) -> CopyDisk:
        command = CopyDisk(
            message_id=step_id(migration, disk.vm, "copy_disk", disk.spec.key),
            migration=migration,
            vm_id=disk.vm,
            source=provider or self.provider,
            disk=disk.spec,
            sink=sink,
        )
        await self.bus.publisher.publish(command)
        return command

    def of(self, kind: type[E], disk: Disk | None = None) -> list[E]:
        found = [event for event in self.events if isinstance(event, kind)]
        if disk is not None:
            found = [event for event in found if getattr(event, "vm_id", disk.vm) == disk.vm]
        return found

    async def first(self, kind: type[E], disk: Disk, *, within: float = 20.0) -> E:
        async def probe() -> E | None:
            self.raise_if_failed(kind)
            found = self.of(kind, disk)
            return found[0] if found else None

        with stacks_on_timeout():
            return await async_wait_for(probe, timeout=within, what=f"{kind.__name__} for {disk.vm}")

    async def failure(self, disk: Disk) -> MessageFailed:
        async def probe() -> MessageFailed | None:
            found = [
                event for event in self.of(MessageFailed) if event.about is not None and event.about.vm_id == disk.vm
            ]
            return found[0] if found else None

        with stacks_on_timeout():
            return await async_wait_for(probe, timeout=20, what=f"MessageFailed for {disk.vm}")

    def raise_if_failed(self, expected: type[Message]) -> None:
        if expected is not MessageFailed and (failed := self.of(MessageFailed)):
            raise AssertionError(f"a command failed: {failed[0].error_code}: {failed[0].reason}")

    async def idle(self) -> None:
        """No copy in flight and the command consumer has nothing unacknowledged."""
        await eventually(lambda: self.service.api.cancellations.copies_in_flight == 0, timeout=10, what="copies ended")

        async def settled() -> bool:
            info = await self.bus.js.consumer_info(subjects.COMMANDS_STREAM, subjects.durable_name(subjects.TRANSFER))
            return info.num_ack_pending == 0 and info.num_pending == 0

        await async_wait_for(settled, timeout=10, what="commands acknowledged")


def await_chain(task: "asyncio.Task[Any]") -> str:
    """Where a task waits: every coroutine frame down its await chain."""
    lines: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return f"{task.get_name()}:\n" + "\n".join(lines)


@contextlib.contextmanager
def stacks_on_timeout() -> Iterator[None]:
    """On a timed-out wait, tell where the service's copies are stuck."""
    try:
        yield
    except AssertionError as error:
        chains = [await_chain(task) for task in asyncio.all_tasks()]
        stuck = [chain for chain in chains if "ferry_transfer/adapters" in chain or "ferry_transfer/handlers" in chain]
        raise AssertionError(f"{error}\nservice tasks:\n" + ("\n".join(stuck) or "(none)")) from None


@pytest.fixture
def simulator(vcsim_factory: VcsimFactory) -> Vcsim:
    return vcsim_factory(model=MODEL)


def provider_for(simulator: Vcsim, **overrides: Any) -> ProviderSpec:
    values: dict[str, Any] = {
        "name": "vc",
        "type": "vsphere",
        "url": simulator.sdk_url,
        "username": simulator.username,
        "ca_bundle": simulator.certificate_path.read_text(),
    }
    values.update(overrides)
    return ProviderSpec(**values)


@pytest_asyncio.fixture
async def harness(bus: Bus, nats_server: NatsServer, simulator: Vcsim, tmp_path: Path) -> AsyncIterator[Harness]:
    async with inventory_desk(
        bus, nats_server, provider_for(simulator), Secret(simulator.password), tmp_path / "inventory"
    ):
        async for harness in _harness(bus, simulator):
            yield harness


async def _harness(bus: Bus, simulator: Vcsim) -> AsyncIterator[Harness]:
    tuning = TransferSettings(range_size=RANGE, progress_interval=0.1, read_retry_delay=0.05)
    service = await bootstrap(bus, ServiceSettings(), tuning)
    harness = Harness(bus, simulator, service, provider_for(simulator))
    decoder = decoder_for(EVENT_TYPES)

    async def collect(msg: Msg) -> None:
        harness.raw_events.append(msg.data)
        with contextlib.suppress(msgspec.DecodeError):  # someone else's event type
            harness.events.append(decoder.decode(msg.data))

    subscription = await bus.nc.subscribe(subjects.ALL_EVENTS, cb=collect)
    spec = ConsumerSpec(
        service=subjects.TRANSFER,
        stream=subjects.COMMANDS_STREAM,
        durable=subjects.durable_name(subjects.TRANSFER),
        filter_subject=subjects.commands_of(subjects.TRANSFER),
        fetch_timeout=0.2,
        drain_timeout=5.0,
    )
    stop = asyncio.Event()
    consumer = DurableConsumer(bus.js, bus.publisher, spec, service.parts.handlers)
    tasks = [asyncio.create_task(consumer.run(stop))]
    tasks += [asyncio.create_task(job(stop)) for job in service.parts.background]
    try:
        yield harness
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await subscription.unsubscribe()


def file_sink(disk: Disk, path: Path, size: int | None = None) -> SinkLocation:
    return SinkLocation(
        disk_key=disk.spec.key, kind="file", size_bytes=size or disk.spec.capacity_bytes, path=str(path)
    )


def expected_sha256(source: bytes) -> str:
    return disk_checksum(source, RANGE)


def assert_progress(harness: Harness, disk: Disk) -> None:
    done = [event.bytes_done for event in harness.of(DiskCopyProgress, disk)]
    assert done, "no progress events"
    assert done == sorted(done) and len(set(done)) == len(done)
    assert done[-1] == disk.spec.capacity_bytes
    assert {event.bytes_total for event in harness.of(DiskCopyProgress, disk)} == {disk.spec.capacity_bytes}


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def open_fds_to(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == str(path):
                found.append(fd.name)
        except OSError:
            continue
    return found


async def test_copies_a_disk_to_a_raw_file_and_reports_it(harness: Harness, tmp_path: Path) -> None:
    disk = harness.disk("dense")
    target = tmp_path / "dense.raw"
    await harness.copy(disk, file_sink(disk, target))
    copied = await harness.first(DiskCopied, disk)
    source = disk.path_on_disk.read_bytes()
    assert target.read_bytes() == source
    assert copied.message_id == step_id("m1", "dense", "disk_copied", disk.spec.key)
    assert (copied.migration, copied.vm_id, copied.disk_key) == ("m1", "dense", disk.spec.key)
    assert copied.bytes_total == copied.bytes_read == copied.bytes_written == len(source)
    assert copied.zero_bytes_skipped == 0
    assert copied.sha256 == expected_sha256(source)
    assert 0 < copied.seconds < 30
    assert_progress(harness, disk)
    await harness.idle()
    assert not open_fds_to(target)


async def test_sparse_and_blank_disks_leave_holes_in_the_raw_file(harness: Harness, tmp_path: Path) -> None:
    sparse, blank = harness.disk("sparse"), harness.disk("blank")
    sparse_target, blank_target = tmp_path / "sparse.raw", tmp_path / "blank.raw"
    blank_target.write_bytes(b"old data from an earlier attempt" * 1000)  # a retried copy starts afresh
    await harness.copy(sparse, file_sink(sparse, sparse_target))
    await harness.copy(blank, file_sink(blank, blank_target))
    sparse_copied = await harness.first(DiskCopied, sparse)
    blank_copied = await harness.first(DiskCopied, blank)

    assert sparse_target.read_bytes() == sparse.path_on_disk.read_bytes()
    data = sum(n for _, n in SPARSE_EXTENTS)
    assert sparse_copied.bytes_written == data
    assert sparse_copied.zero_bytes_skipped == sparse.spec.capacity_bytes - data
    assert allocated(sparse_target) < 2 * data
    assert blank_target.stat().st_size == blank.spec.capacity_bytes
    assert blank_target.read_bytes() == bytes(blank.spec.capacity_bytes)
    assert blank_copied.bytes_written == 0
    assert allocated(blank_target) == 0
    assert blank_copied.sha256 == expected_sha256(bytes(blank.spec.capacity_bytes))
    assert_progress(harness, sparse)
    assert_progress(harness, blank)


def accepting(port: int) -> bool | None:
    with socket.socket() as probe:
        try:
            probe.connect(("127.0.0.1", port))
        except OSError:
            return None
    return True


@pytest.fixture
def nbd_servers(tmp_path: Path) -> Iterator[Callable[[str, int], int]]:
    """Start ``qemu-nbd`` (on a sparse file) or ``nbdkit memory`` of a size; returns the port."""
    if not (shutil.which("qemu-nbd") and shutil.which("nbdkit")):
        pytest.fail("qemu-nbd and nbdkit are missing: run scripts/install-debs.sh (make peers does)", pytrace=False)
    processes: list[ManagedProcess] = []

    def start(kind: str, size: int) -> int:
        directory = tmp_path / f"{kind}-{len(processes)}"
        directory.mkdir()
        port = free_port()
        if kind == "qemu-nbd":
            image = directory / "disk.raw"
            with image.open("wb") as file:
                file.truncate(size)
            argv = ["qemu-nbd", "-f", "raw", "-x", "disk", "-b", "127.0.0.1", "-p", str(port), "--persistent"]
            argv += ["--shared=8", str(image)]
        else:
            argv = ["nbdkit", "--foreground", "--exit-with-parent", "-e", "disk", "-i", "127.0.0.1", "-p", str(port)]
            argv += ["memory", str(size)]
        process = ManagedProcess(kind, argv, directory / f"{kind}.log")
        processes.append(process)
        process.wait_until(lambda: accepting(port), timeout=20, what="accepting connections")
        return port

    yield start
    for process in processes:
        process.stop()


async def read_export(port: int, size: int) -> bytes:
    async with NbdClient.connect(host="127.0.0.1", port=port, export_name="disk") as nbd:
        chunks = [await nbd.pread(offset, min(8 * MiB, size - offset)) for offset in range(0, size, 8 * MiB)]
    return b"".join(chunks)


@pytest.mark.parametrize("server", ["qemu-nbd", "nbdkit"])
async def test_copies_disks_to_an_nbd_export(
    harness: Harness, nbd_servers: Callable[[str, int], int], server: str
) -> None:
    for vm in ("dense", "sparse"):
        disk = harness.disk(vm)
        port = nbd_servers(server, disk.spec.capacity_bytes)
        sink = SinkLocation(
            disk_key=disk.spec.key,
            kind="nbd",
            size_bytes=disk.spec.capacity_bytes,
            host="127.0.0.1",
            port=port,
            export="disk",
        )
        await harness.copy(disk, sink)
        copied = await harness.first(DiskCopied, disk)
        source = disk.path_on_disk.read_bytes()
        assert await read_export(port, len(source)) == source
        assert copied.sha256 == expected_sha256(source)
        assert copied.bytes_written + copied.zero_bytes_skipped == len(source)
        assert_progress(harness, disk)
    await harness.service.api.sinks.close_all()  # the servers stop only once their clients hang up


async def test_a_cancelled_vm_stops_copying_at_once_and_leaves_no_open_sink(harness: Harness, tmp_path: Path) -> None:
    disk = harness.disk("dense")
    harness.control("PUT", "/bandwidth", {"bytes_per_second": MiB})  # 4 connections: about 6 s for 24 MiB
    target = tmp_path / "cancelled.raw"
    await harness.copy(disk, file_sink(disk, target))
    await harness.first(DiskCopyProgress, disk)
    assert open_fds_to(target), "the copy should be writing the target now"

    await harness.bus.publisher.publish(
        VmCancelRequested(message_id=step_id("m1", "dense", "cancel"), migration="m1", vm_id="dense")
    )
    canceled = await harness.first(DiskCopyCanceled, disk, within=3)
    assert canceled.message_id == step_id("m1", "dense", "disk_copy_canceled", disk.spec.key)
    assert canceled.disk_key == disk.spec.key
    await harness.idle()
    assert not harness.of(DiskCopied)
    assert not harness.of(MessageFailed)
    assert max(event.bytes_done for event in harness.of(DiskCopyProgress, disk)) < disk.spec.capacity_bytes
    assert not open_fds_to(target)


async def test_a_copy_that_arrives_after_its_vm_was_cancelled_is_not_started(harness: Harness, tmp_path: Path) -> None:
    disk = harness.disk("dense")
    await harness.bus.publisher.publish(
        VmCancelRequested(message_id=step_id("m2", "dense", "cancel"), migration="m2", vm_id="dense")
    )
    registry = harness.service.api.cancellations
    await eventually(lambda: registry.is_cancelled("m2", "dense"), timeout=5, what="the cancellation heard")
    target = tmp_path / "never.raw"
    await harness.copy(disk, file_sink(disk, target), migration="m2")
    await harness.first(DiskCopyCanceled, disk)
    await harness.idle()
    assert not target.exists()
    assert not harness.of(DiskCopyProgress) and not harness.of(DiskCopied)


async def test_a_wrong_password_fails_the_command_without_showing_the_password(
    harness: Harness, nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-" + harness.simulator.password[::-1]
    await store_password(harness.bus, nats_server, "vc", Secret(wrong))
    disk = harness.disk("dense")
    command = await harness.copy(disk, file_sink(disk, tmp_path / "denied.raw"), migration="m3")
    failed = await harness.failure(disk)
    assert failed.about == StepRef(migration="m3", vm_id="dense")
    assert failed.failed_type == CopyDisk.type_tag() and failed.failed_subject == command.subject
    assert failed.error_code == "invalid_login"
    assert "refused the user name" in failed.reason and "logging in to source provider 'vc'" in failed.reason
    assert failed.attempts == 1
    await harness.idle()
    for raw in harness.raw_events:
        assert wrong.encode() not in raw and harness.simulator.password.encode() not in raw
    assert "refused the user name" in caplog.text
    assert wrong not in caplog.text and harness.simulator.password not in caplog.text
    assert not harness.of(DiskCopied)


async def test_a_missing_disk_file_fails_with_a_readable_reason(harness: Harness, tmp_path: Path) -> None:
    real = harness.disk("dense")
    missing = Disk(
        "ghost",
        SourceDisk(key=2000, file_name="[LocalDS_0] ghost/ghost.vmdk", datacenter="DC0", capacity_bytes=4 * MiB),
        Path("/nonexistent"),
    )
    await harness.copy(missing, file_sink(missing, tmp_path / "ghost.raw"))
    failed = await harness.failure(missing)
    assert failed.about == StepRef(migration="m1", vm_id="ghost")
    assert failed.error_code == "disk_not_found"
    assert "404 Not Found" in failed.reason and "ghost/ghost-flat.vmdk" in failed.reason
    assert "check the disk's backing file" in failed.reason

    bad_path = Disk(
        "badpath", SourceDisk(key=1, file_name="ghost.vmdk", datacenter="DC0", capacity_bytes=MiB), real.path_on_disk
    )
    await harness.copy(bad_path, file_sink(bad_path, tmp_path / "bad.raw"))
    failed = await harness.failure(bad_path)
    assert failed.error_code == "invalid_disk_path"
    assert "not a datastore path" in failed.reason


async def test_one_login_serves_many_copies_and_an_expired_session_logs_in_again(
    harness: Harness, tmp_path: Path
) -> None:
    logins = harness.control("POST", "/faults", {"method": "CloneSession", "delay_ms": 1})["id"]  # counts, proceeds
    dense, sparse = harness.disk("dense"), harness.disk("sparse")
    await harness.copy(dense, file_sink(dense, tmp_path / "one.raw"))
    await harness.first(DiskCopied, dense)
    harness.control("POST", "/faults", {"path": "sparse-flat.vmdk", "status": 401, "times": 1})
    harness.control("POST", "/faults", {"path": "sparse-flat.vmdk", "status": 503, "times": 1})
    await harness.copy(sparse, file_sink(sparse, tmp_path / "two.raw"))
    await harness.first(DiskCopied, sparse)
    assert (tmp_path / "two.raw").read_bytes() == sparse.path_on_disk.read_bytes()
    rules = {rule["id"]: rule for rule in harness.control("GET", "/faults")}
    assert rules[logins]["fired"] == 2  # the first copy's login (with a ticket), then one after the 401
    assert all(rule["fired"] == 1 for rule in rules.values() if rule["id"] != logins)


async def test_a_pinned_thumbprint_is_enough_and_a_wrong_one_is_refused(harness: Harness, tmp_path: Path) -> None:
    simulator = harness.simulator
    pinned = provider_for(simulator, name="vc", ca_bundle="", thumbprint=simulator.thumbprint_sha256)
    disk = harness.disk("dense")
    await harness.copy(disk, file_sink(disk, tmp_path / "pinned.raw"), provider=pinned)
    await harness.first(DiskCopied, disk)
    assert (tmp_path / "pinned.raw").read_bytes() == disk.path_on_disk.read_bytes()

    other = ":".join(["AB"] * 32)
    blank = harness.disk("blank")
    await harness.copy(blank, file_sink(blank, tmp_path / "wrong.raw"), provider=pinned_with(pinned, other))
    failed = await harness.failure(blank)
    assert failed.error_code == "thumbprint_mismatch"
    assert other in failed.reason and simulator.thumbprint_sha256 in failed.reason


def pinned_with(spec: ProviderSpec, thumbprint: str) -> ProviderSpec:
    return msgspec.structs.replace(spec, thumbprint=thumbprint)


async def test_sinks_that_cannot_be_opened_say_why_and_whether_to_retry(
    nbd_servers: Callable[[str, int], int], tmp_path: Path
) -> None:
    factory = SinkFactory(SinkOptions(connect_timeout=5))
    port = nbd_servers("qemu-nbd", MiB)

    def nbd(port: int, export: str) -> SinkLocation:
        return SinkLocation(disk_key=1, kind="nbd", size_bytes=MiB, host="127.0.0.1", port=port, export=export)

    cases = [
        (nbd(free_port(), "disk"), "sink_unreachable", True, "may still be starting"),
        (nbd(port, "other"), "sink_refused", False, "check the sink's export name"),
        (SinkLocation(disk_key=1, kind="file", size_bytes=MiB, path=str(tmp_path / "no" / "d.raw")), "sink_missing",
         False, "shared with every transfer worker"),
        (SinkLocation(disk_key=1, kind="file", size_bytes=MiB, path="relative.raw"), "invalid_sink", False,
         "not absolute"),
    ]  # fmt: skip
    for spec, code, retryable, advice in cases:
        with pytest.raises(SinkUnavailable) as caught:
            async with factory.open(spec):
                pass
        assert (caught.value.code, caught.value.retryable) == (code, retryable), spec
        assert advice in caught.value.message

    async with factory.open(nbd(port, "disk")) as sink:  # the export itself works
        assert sink.size == MiB
    await factory.close_all()
