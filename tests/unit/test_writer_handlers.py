"""kubevirt-writer's handlers with hand-written fakes behind its ports: what they ask the
target's writer, what they publish, and when they refuse a command."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
import pytest

from ferry_kubevirt_writer.domain.ports import TargetWriter
from ferry_kubevirt_writer.handlers import handler_table
from ferry_shared.bus.delivery import Delivery
from ferry_shared.errors import PermanentError
from ferry_shared.messages import Message
from ferry_shared.migrations import (
    CleanupVm,
    CreateVm,
    PrepareVolumes,
    SinkLocation,
    VmCleanedUp,
    VmCreated,
    VolumesPrepared,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.target_vm import TargetDisk, TargetVm

TARGET = ProviderSpec(name="cluster", type="kubernetes")
VM = TargetVm(name="web-1", namespace="apps", source_provider="vc", source_vm_id="vm-42", source_vm_name="Web 1",
              plan="p1", memory_mib=1024,
              disks=(TargetDisk(key=2000, source_file="[ds] web/web.vmdk", capacity_bytes=1 << 30),))  # fmt: skip
SINKS = (SinkLocation(disk_key=2000, kind="nbd", size_bytes=1 << 30, host="10.0.0.9", port=10809, export="disk"),)


class FakeDelivery:
    """Records whether the handler held its lease while the writer worked."""

    def __init__(self) -> None:
        self.holding = False

    @contextlib.asynccontextmanager
    async def lease(self, interval: float | None = None) -> AsyncIterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False


@dataclass
class FakeWriter:
    delivery: FakeDelivery
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def prepare_volumes(self, migration: str, vm: TargetVm) -> tuple[SinkLocation, ...]:
        assert self.delivery.holding, "the lease is held while the target is written"
        self.calls.append(("prepare_volumes", migration))
        return SINKS

    async def create_vm(self, migration: str, vm: TargetVm) -> str:
        assert self.delivery.holding
        self.calls.append(("create_vm", vm.name))
        return f"{vm.namespace}/{vm.name}"

    async def cleanup_vm(self, migration: str, vm: TargetVm) -> tuple[str, ...]:
        assert self.delivery.holding
        self.calls.append(("cleanup_vm", vm.name))
        return (f"VirtualMachine {vm.namespace}/{vm.name}",)


@dataclass
class FakeTargets:
    writer: FakeWriter
    asked: list[ProviderSpec] = field(default_factory=list)

    async def writer_for(self, target: ProviderSpec) -> TargetWriter:
        self.asked.append(target)
        return self.writer


@dataclass
class FakePublisher:
    published: list[Message] = field(default_factory=list)

    async def publish(self, message: Message) -> object:
        self.published.append(message)
        return None


@dataclass
class Service:
    delivery: FakeDelivery
    targets: FakeTargets
    publisher: FakePublisher

    async def handle(self, command: Any) -> None:
        table = handler_table(self.targets, self.publisher)
        await table[type(command)](command, cast(Delivery, self.delivery))


@pytest.fixture
def service() -> Service:
    delivery = FakeDelivery()
    return Service(delivery, FakeTargets(FakeWriter(delivery)), FakePublisher())


def command(kind: type[Any], vm: TargetVm = VM) -> Any:
    return kind(message_id="cmd-1", migration="p1-1", vm_id="vm-42", target=TARGET, vm=vm)


async def test_prepare_volumes_answers_with_the_writers_sinks_under_a_step_id(service: Service) -> None:
    await service.handle(command(PrepareVolumes))
    assert service.targets.asked == [TARGET]
    assert service.targets.writer.calls == [("prepare_volumes", "p1-1")]
    assert service.publisher.published == [
        VolumesPrepared(
            message_id="p1-1:vm-42:volumes_prepared",
            migration="p1-1",
            vm_id="vm-42",
            sinks=SINKS,
            occurred_at=service.publisher.published[0].occurred_at,  # type: ignore[attr-defined]
        )
    ]


async def test_create_vm_answers_with_the_location(service: Service) -> None:
    await service.handle(command(CreateVm))
    (event,) = service.publisher.published
    assert isinstance(event, VmCreated)
    assert (event.message_id, event.location) == ("p1-1:vm-42:vm_created", "apps/web-1")


async def test_cleanup_answers_with_what_was_removed(service: Service) -> None:
    await service.handle(command(CleanupVm))
    (event,) = service.publisher.published
    assert isinstance(event, VmCleanedUp)
    assert (event.message_id, event.removed) == ("p1-1:vm-42:vm_cleaned_up", ("VirtualMachine apps/web-1",))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"name": "Web_1"}, "VM name 'Web_1' is not a DNS-1123 label"),
        ({"namespace": "../etc"}, "target namespace '../etc' of VM 'web-1' is not a DNS-1123 label"),
        ({"memory_mib": 0}, "memory must be at least 1 MiB"),
        ({"disks": (TargetDisk(key=1, source_file="f", capacity_bytes=0),)}, "disk capacity must be more than 0"),
        ({"disks": VM.disks * 2}, "lists a disk key more than once: [2000, 2000]"),
    ],
)
async def test_a_blueprint_no_target_can_take_fails_permanently_before_anything_is_written(
    service: Service, change: dict[str, Any], complaint: str
) -> None:
    for kind in (PrepareVolumes, CreateVm):
        with pytest.raises(PermanentError) as raised:
            await service.handle(command(kind, msgspec.structs.replace(VM, **change)))
        assert raised.value.code == "invalid_vm"
        assert complaint in raised.value.message
    assert service.targets.writer.calls == []
    assert service.publisher.published == []


async def test_cleanup_of_a_vm_whose_names_cannot_exist_removes_nothing_and_says_so(service: Service) -> None:
    await service.handle(command(CleanupVm, msgspec.structs.replace(VM, name="Not A Name")))
    assert service.targets.writer.calls == []
    (event,) = service.publisher.published
    assert isinstance(event, VmCleanedUp) and event.removed == ()
