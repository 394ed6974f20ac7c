"""Fake peers for the planner's use-case tests: they answer each command the planner
published as the inventory, the writer and the transfer would, and feed the answers to
the planner's event handlers (held answers model a step still in flight)."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from ferry_planner.handlers.events import on_message_failed, on_step_event
from ferry_shared.bus.delivery import Delivery
from ferry_shared.messages import Message, MessageFailed, StepRef
from ferry_shared.migrations import (
    CleanupVm,
    CopyDisk,
    CreateVm,
    DiskCopied,
    DiskCopyProgress,
    PowerOffSourceVm,
    PrepareVolumes,
    RestoreSourcePowerState,
    SinkLocation,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourcePowerStateRestored,
    SourceVmPoweredOff,
    StepCommand,
    StepEvent,
    VmCleanedUp,
    VmCreated,
    VolumesPrepared,
    step_fields,
)

from .planner_fakes import World

NO_DELIVERY: Delivery = None  # type: ignore[assignment]  # the planner's event handlers never touch it


def answers(command: StepCommand) -> list[StepEvent]:
    """What the peer that owns ``command`` says back when the step succeeds."""
    ref = (command.migration, command.vm_id)
    match command:
        case PowerOffSourceVm():
            return [
                SourcePowerStateRecorded(**step_fields(*ref, "recorded"), power_state="poweredOn"),
                SourcePowerOffRequested(**step_fields(*ref, "requested"), method="guest_shutdown"),
                SourceVmPoweredOff(**step_fields(*ref, "off")),
            ]
        case PrepareVolumes():
            sinks = tuple(
                SinkLocation(disk_key=disk.key, kind="file", size_bytes=disk.capacity_bytes, path=f"/t/{disk.key}.raw")
                for disk in command.vm.disks
            )
            return [VolumesPrepared(**step_fields(*ref, "prepared"), sinks=sinks)]
        case CopyDisk():
            total, key = command.disk.capacity_bytes, command.disk.key
            return [
                DiskCopyProgress(**step_fields(*ref, "progress", key), disk_key=key, bytes_done=total // 2,
                                 bytes_total=total),
                DiskCopied(**step_fields(*ref, "copied", key), disk_key=key, bytes_total=total, bytes_read=total,
                           bytes_written=total, zero_bytes_skipped=0, sha256="0" * 64, seconds=1.0),
            ]  # fmt: skip
        case CreateVm():
            return [VmCreated(**step_fields(*ref, "created"), location=f"/t/{command.vm.name}")]
        case CleanupVm():
            return [VmCleanedUp(**step_fields(*ref, "cleaned"))]
        case RestoreSourcePowerState():
            return [SourcePowerStateRestored(**step_fields(*ref, "restored"), power_state=command.power_state)]
    return []


def failure(command: StepCommand, reason: str = "it broke") -> MessageFailed:
    return MessageFailed(
        message_id=f"failed:{command.message_id}", failed_subject=command.subject, failed_type=command.type_tag(),
        stream_sequence=1, attempts=5, service="peer", error_code="broken", reason=reason,
        about=StepRef(migration=command.migration, vm_id=command.vm_id),
    )  # fmt: skip


@dataclass
class Peers:
    """``hold``: (vm id, command type) whose answers wait until released; ``fail``: those
    that fail. Answers not yet handled stay in ``inbox``: a planner that crashed while
    handling one gets it again after its restart, as from a durable consumer."""

    hold: set[tuple[str, type[StepCommand]]] = field(default_factory=set)
    fail: set[tuple[str, type[StepCommand]]] = field(default_factory=set)
    held: list[StepCommand] = field(default_factory=list)
    inbox: list[StepEvent | MessageFailed] = field(default_factory=list)
    seen: int = 0

    async def drive(self, world: World) -> None:
        """Answer every command published so far, and those the answers cause, until quiet."""
        while True:
            while self.seen < len(world.publisher.published):
                message = world.publisher.published[self.seen]
                self.seen += 1
                if isinstance(message, StepCommand):
                    self._answer(message)
            if not self.inbox:
                return
            await deliver(world, self.inbox[0])  # a crash leaves it in the inbox
            self.inbox.pop(0)

    async def release(self, world: World, vm_id: str, kind: type[StepCommand]) -> None:
        """The held step of ``vm_id`` finishes now."""
        self.hold.discard((vm_id, kind))
        for command in [c for c in self.held if c.vm_id == vm_id and isinstance(c, kind)]:
            self.held.remove(command)
            self._answer(command)
        await self.drive(world)

    def follow(self, world: World) -> None:
        """Follow a restarted planner (its publisher starts empty)."""
        del world
        self.seen = 0

    def _answer(self, command: StepCommand) -> None:
        key = (command.vm_id, type(command))
        if key in self.hold:
            self.held.append(command)
        elif key in self.fail:
            self.inbox.append(failure(command))
        else:
            self.inbox.extend(answers(command))


async def deliver(world: World, event: StepEvent | MessageFailed) -> None:
    if isinstance(event, MessageFailed):
        await on_message_failed(event, NO_DELIVERY, ports=world.ports)
    else:
        await on_step_event(event, NO_DELIVERY, ports=world.ports)


def kinds(messages: Sequence[Message]) -> list[str]:
    return [type(m).__name__ for m in messages]
