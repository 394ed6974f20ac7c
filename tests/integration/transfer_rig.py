"""Transfer worker processes against real peers, for the range and crash tests.

A :class:`TransferRig` starts ``python -m ferry_transfer`` workers (each with its own work
folder, so its own log), publishes ``CopyDisk`` commands like the planner does, collects
every event on ``ferry.evt.>`` through a core subscription, and reads the simulator's fault
counters and the disk checkpoints. Worker tuning comes from ``FERRY_*`` variables the tests
set (the processes inherit the environment).
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ferry_peers.inventory_desk import inventory_desk
from ferry_peers.nats_server import NatsServer
from ferry_peers.services import ServiceProcess, start_service
from ferry_peers.vcsim import Vcsim
from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credentials import Secret
from ferry_shared.messages import Message, MessageFailed, decoder_for
from ferry_shared.migrations import (
    CopyDisk,
    DiskCopied,
    DiskCopyCanceled,
    DiskCopyProgress,
    SinkLocation,
    SourceDisk,
    step_id,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus
from ferry_testpeers.waiting import async_wait_for
from ferry_transfer.adapters.checkpoints import KvCheckpoints
from ferry_transfer.domain.checkpoint import DiskRecord
from ferry_transfer.domain.copies import DiskId

MiB = 1024 * 1024
EVENT_TYPES: list[type[Message]] = [DiskCopied, DiskCopyProgress, DiskCopyCanceled, MessageFailed]
E = TypeVar("E", bound=Message)


@dataclass
class Disk:
    vm: str
    moref: str
    spec: SourceDisk
    path_on_disk: Path

    @property
    def size(self) -> int:
        return self.spec.capacity_bytes


@dataclass
class TransferRig:
    bus: Bus
    nats: NatsServer
    simulator: Vcsim
    work_dir: Path
    workers: list[ServiceProcess] = field(default_factory=list)
    events: list[Message] = field(default_factory=list)
    _subscription: Subscription | None = None

    async def subscribe(self) -> None:
        """Collect every event on ``ferry.evt.>`` (again, after a new connection)."""
        decoder = decoder_for(EVENT_TYPES)

        async def collect(msg: Msg) -> None:
            with contextlib.suppress(msgspec.DecodeError):  # someone else's event type
                self.events.append(decoder.decode(msg.data))

        self._subscription = await self.bus.nc.subscribe(subjects.ALL_EVENTS, cb=collect)
        await self.bus.nc.flush()

    @property
    def provider(self) -> ProviderSpec:
        return ProviderSpec(
            name="vc",
            type="vsphere",
            url=self.simulator.sdk_url,
            username=self.simulator.username,
            ca_bundle=self.simulator.certificate_path.read_text(),
        )

    async def start_workers(self, count: int) -> list[ServiceProcess]:
        """Start ``count`` worker processes at once (each logs to ``worker-N/logs/transfer.log``)."""
        folders = [self.work_dir / f"worker-{len(self.workers) + n}" for n in range(count)]
        started = await asyncio.gather(
            *(asyncio.to_thread(start_service, "transfer", self.nats, folder) for folder in folders)
        )
        self.workers += started
        return list(started)

    def stop_workers(self) -> None:
        """SIGTERM every worker at once (each finishes its ranges in flight), then wait for them."""
        running = [worker.process for worker in self.workers if worker.process.process.poll() is None]
        for process in running:
            process.process.terminate()
        for process in running:
            process.stop()

    def disk(self, vm: str, *, cbt: bool = False) -> Disk:
        info = self.control("GET", f"/vms/{vm}")
        first = info["disks"][0]
        spec = SourceDisk(
            key=first["key"], file_name=first["file"], datacenter="DC0", capacity_bytes=first["capacity"], cbt=cbt
        )
        return Disk(vm, info["moref"], spec, Path(first["path_on_disk"]))

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.simulator.control_url}{path}", json=body)
        response.raise_for_status()
        return response.json()

    def slow_ranges(self, disk: Disk, range_size: int, delay_ms: int) -> dict[int, str]:
        """A delay rule per range (its single read), which also counts that range's reads: index → rule id."""
        name = disk.path_on_disk.name
        rules = {}
        for index, offset in enumerate(range(0, disk.size, range_size)):
            header = f"bytes={offset}-{min(disk.size, offset + range_size) - 1}"
            rules[index] = self.control("POST", "/faults", {"path": name, "range": header, "delay_ms": delay_ms})["id"]
        return rules

    def reads_per_range(self, rules: dict[int, str]) -> dict[int, int]:
        fired = {rule["id"]: rule["fired"] for rule in self.control("GET", "/faults")}
        return {index: fired[rule] for index, rule in rules.items()}

    async def copy(self, disk: Disk, sink: SinkLocation, *, migration: str = "m1") -> CopyDisk:
        command = CopyDisk(
            message_id=step_id(migration, disk.moref, "copy_disk", disk.spec.key),
            migration=migration,
            vm_id=disk.moref,
            source=self.provider,
            disk=disk.spec,
            sink=sink,
        )
        await self.bus.publisher.publish(command)
        return command

    def of(self, kind: type[E], disk: Disk | None = None) -> list[E]:
        found = [event for event in self.events if isinstance(event, kind)]
        if disk is not None:
            found = [event for event in found if getattr(event, "vm_id", disk.moref) == disk.moref]
        return found

    async def first(self, kind: type[E], disk: Disk, *, migration: str = "m1", within: float = 60.0) -> E:
        """The first event of ``kind`` about ``disk`` in ``migration`` (failing at once on a MessageFailed)."""

        async def probe() -> E | None:
            if kind is not MessageFailed and (failed := self.of(MessageFailed)):
                raise AssertionError(f"a command failed: {failed[0].error_code}: {failed[0].reason}")
            found = [event for event in self.of(kind, disk) if getattr(event, "migration", migration) == migration]
            return found[0] if found else None

        return await async_wait_for(probe, timeout=within, what=f"{kind.__name__} for {disk.vm}")

    async def checkpoint(self, disk: Disk, migration: str = "m1") -> DiskRecord | None:
        kv = await ensure_kv(self.bus.js, subjects.TRANSFER_CHECKPOINTS_BUCKET)
        return await KvCheckpoints(kv).load(DiskId(migration, disk.moref, disk.spec.key))

    async def settled(self) -> None:
        """Every transfer command is acknowledged."""

        async def idle() -> bool:
            info = await self.bus.js.consumer_info(subjects.COMMANDS_STREAM, subjects.durable_name(subjects.TRANSFER))
            return info.num_ack_pending == 0 and info.num_pending == 0

        await async_wait_for(idle, timeout=30, what="every transfer command acknowledged")

    def ranges_copied_by(self, worker: ServiceProcess) -> list[int]:
        """Range indexes a worker logged as copied."""
        found = []
        for line in worker.process.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and "range_index" in entry:
                    found.append(int(entry["range_index"]))
        return found

    def progress(self, disk: Disk) -> list[int]:
        return [event.bytes_done for event in self.of(DiskCopyProgress, disk)]


def file_sink(disk: Disk, path: Path) -> SinkLocation:
    return SinkLocation(disk_key=disk.spec.key, kind="file", size_bytes=disk.size, path=str(path))


def nbd_sink(disk: Disk, port: int) -> SinkLocation:
    return SinkLocation(
        disk_key=disk.spec.key, kind="nbd", size_bytes=disk.size, host="127.0.0.1", port=port, export="disk"
    )


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


@contextlib.asynccontextmanager
async def transfer_rig(bus: Bus, nats: NatsServer, simulator: Vcsim, work_dir: Path) -> AsyncIterator[TransferRig]:
    """A rig with an inventory issuing clone tickets to the simulator and events collected;
    its workers stop on exit."""
    rig = TransferRig(bus, nats, simulator, work_dir)
    async with inventory_desk(bus, nats, rig.provider, Secret(simulator.password), work_dir / "inventory"):
        await rig.subscribe()
        try:
            yield rig
        finally:
            await asyncio.to_thread(rig.stop_workers)
            if rig._subscription is not None and rig.bus.nc.is_connected:
                await rig._subscription.unsubscribe()


def model(vms: list[dict[str, Any]]) -> dict[str, Any]:
    """A one-datacenter simulator model with these VMs."""
    return {
        "datacenters": [
            {
                "name": "DC0",
                "datastores": [{"name": "LocalDS_0"}],
                "clusters": [{"name": "C0", "hosts": [{"name": "H0"}]}],
                "vms": vms,
            }
        ]
    }


def one_read_per_range(monkeypatch: pytest.MonkeyPatch, range_size: int) -> None:
    """Worker settings for the crash and cancel tests: ranges of ``range_size`` read in one
    chunk, two ranges per worker, progress every 0.2 s, the default ack wait."""
    monkeypatch.setenv("FERRY_TRANSFER_RANGE_SIZE", str(range_size))
    monkeypatch.setenv("FERRY_TRANSFER_CHUNK_SIZE", str(range_size))
    monkeypatch.setenv("FERRY_TRANSFER_PROGRESS_INTERVAL", "0.2")
    monkeypatch.setenv("FERRY_TRANSFER_RANGES_IN_FLIGHT", "2")
