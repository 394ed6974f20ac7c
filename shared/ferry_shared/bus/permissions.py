"""What each Ferry service may publish and subscribe to on NATS: its identity's allow-lists.

Derived from :mod:`ferry_shared.subjects` and the message classes: a service publishes
the commands it sends and the events it emits, and reaches through ``$JS.API`` only the
streams it ensures, its own durable consumers and the KV buckets it uses (read, or read
and write). Core-NATS replies come back on the service's own inbox prefix
(:func:`inbox_prefix`), which only it may subscribe to. :func:`server_config` in
:mod:`ferry_shared.bus.server_config` turns these into a nats-server configuration.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from ferry_shared import subjects
from ferry_shared.messages import Message, MessageFailed
from ferry_shared.migrations import (
    CleanupVm,
    CopyDisk,
    CopyRange,
    CreateVm,
    DiskCopied,
    DiskCopyCanceled,
    DiskCopyProgress,
    MigrationFinished,
    PowerOffSourceVm,
    PrepareVolumes,
    RestoreSourcePowerState,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourcePowerStateRestored,
    SourceVmPoweredOff,
    VmCancelRequested,
    VmCleanedUp,
    VmCreated,
    VmPhaseChanged,
    VolumesPrepared,
)
from ferry_shared.plans import PlanValidated
from ferry_shared.providers import ConnectProvider, DisconnectProvider, InventoryChanged, ProviderStatusChanged

ADMIN = "admin"
"""The identity with every right: tests, ``ferry demo`` tooling, an operator's tools."""

JS_API = "$JS.API"


class Access(Enum):
    """How a service uses a KV bucket."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Permissions:
    """One identity's rights, as nats-server's ``permissions`` block takes them."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()
    allow_responses: bool = False
    """Whether it may answer the requests it received (core request/reply)."""


@dataclass(frozen=True)
class ServiceBus:
    """What one service does on the bus, from which its :class:`Permissions` follow."""

    service: str
    publishes: tuple[type[Message], ...]
    commands: bool
    """Whether it pulls its own commands (a durable on the commands stream)."""
    events_durable: bool = False
    """Whether it reads events through its own durable on the events stream."""
    ephemeral_event_readers: bool = False
    """Whether it reads the events stream through short-lived consumers of its own."""
    buckets: tuple[tuple[str, Access], ...] = ()
    requests: tuple[str, ...] = ()
    """Core-NATS subjects it sends requests to."""
    answers: tuple[str, ...] = ()
    """Core-NATS subjects it serves (subscribes to, and replies on)."""
    denied: tuple[str, ...] = ()
    """Subjects it must never publish to, whatever another rule allows."""


def inbox_prefix(service: str) -> str:
    """The inbox prefix of ``service``'s connection: replies to its requests (JetStream API
    answers, pulled messages, KV watches) come on subjects under it, which only it reads."""
    return f"_INBOX_{service}"


def _kv_denied(bucket: str) -> tuple[str, ...]:
    stream = f"KV_{bucket}"
    return (f"$KV.{bucket}.>", f"{JS_API}.*.{stream}", f"{JS_API}.*.{stream}.>", f"{JS_API}.*.*.{stream}.>")


SERVICE_BUS: dict[str, ServiceBus] = {
    subjects.INVENTORY: ServiceBus(
        service=subjects.INVENTORY,
        publishes=(
            InventoryChanged,
            ProviderStatusChanged,
            SourcePowerOffRequested,
            SourcePowerStateRecorded,
            SourcePowerStateRestored,
            SourceVmPoweredOff,
            MessageFailed,
        ),
        commands=True,
        buckets=((subjects.INVENTORY_BUCKET, Access.WRITE), (subjects.CREDENTIALS_BUCKET, Access.READ)),
        answers=(subjects.SOURCE_SESSION_RPC,),
    ),
    subjects.PLANNER: ServiceBus(
        service=subjects.PLANNER,
        publishes=(
            ConnectProvider,
            DisconnectProvider,
            PowerOffSourceVm,
            RestoreSourcePowerState,
            PrepareVolumes,
            CreateVm,
            CleanupVm,
            CopyDisk,
            PlanValidated,
            VmCancelRequested,
            VmPhaseChanged,
            MigrationFinished,
            MessageFailed,
        ),
        commands=False,
        events_durable=True,
        buckets=(
            (subjects.PLANNER_BUCKET, Access.WRITE),
            (subjects.CREDENTIALS_BUCKET, Access.WRITE),
            (subjects.INVENTORY_BUCKET, Access.READ),
        ),
    ),
    subjects.TRANSFER: ServiceBus(
        service=subjects.TRANSFER,
        publishes=(CopyRange, DiskCopyProgress, DiskCopied, DiskCopyCanceled, MessageFailed),
        commands=True,
        ephemeral_event_readers=True,  # the cancellation feed
        buckets=((subjects.TRANSFER_CHECKPOINTS_BUCKET, Access.WRITE),),
        requests=(subjects.SOURCE_SESSION_RPC,),  # a one-time vSphere clone ticket: it holds no password
        denied=(subjects.commands_of(subjects.KUBEVIRT_WRITER), *_kv_denied(subjects.CREDENTIALS_BUCKET)),
    ),
    subjects.KUBEVIRT_WRITER: ServiceBus(
        service=subjects.KUBEVIRT_WRITER,
        publishes=(VolumesPrepared, VmCreated, VmCleanedUp, MessageFailed),
        commands=True,
        buckets=((subjects.CREDENTIALS_BUCKET, Access.READ),),
    ),
}


def _stream_rights(stream: str) -> list[str]:
    """Ensuring a stream: reading its info, creating it, updating its config."""
    return [f"{JS_API}.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE", "UPDATE")]


def _durable_rights(stream: str, durable: str, filter_subject: str | None) -> list[str]:
    """Creating (with the filter in the subject, so the server checks it), reading and
    pulling one durable consumer, and acknowledging its messages."""
    create = f"{JS_API}.CONSUMER.CREATE.{stream}.{durable}"
    return [
        f"{create}.{filter_subject}" if filter_subject else create,
        f"{JS_API}.CONSUMER.INFO.{stream}.{durable}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _ephemeral_rights(stream: str) -> list[str]:
    """Short-lived consumers of one's own on ``stream`` (KV watches, the cancellation feed)."""
    return [
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.>",
        f"{JS_API}.CONSUMER.INFO.{stream}.*",
        f"{JS_API}.CONSUMER.DELETE.{stream}.*",
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.FC.{stream}.>",
    ]


def _bucket_rights(bucket: str, access: Access) -> list[str]:
    stream = f"KV_{bucket}"
    rights = [
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.STREAM.CREATE.{stream}",
        f"{JS_API}.STREAM.MSG.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.>",
        *_ephemeral_rights(stream),
    ]
    if access is Access.WRITE:
        rights.append(f"$KV.{bucket}.>")
    return rights


def service_permissions(service: str) -> Permissions:
    """The rights of ``service``'s identity (see the module docstring)."""
    bus = SERVICE_BUS[service]
    publish: list[str] = [f"{JS_API}.INFO"]
    publish += _stream_rights(subjects.COMMANDS_STREAM) + _stream_rights(subjects.EVENTS_STREAM)
    publish += sorted({message.subject for message in bus.publishes})
    if bus.commands:
        publish += _durable_rights(
            subjects.COMMANDS_STREAM, subjects.durable_name(service), subjects.commands_of(service)
        )
    if bus.events_durable:
        publish += _durable_rights(subjects.EVENTS_STREAM, subjects.events_durable_name(service), None)
    if bus.ephemeral_event_readers:
        publish += _ephemeral_rights(subjects.EVENTS_STREAM)
    for bucket, access in bus.buckets:
        publish += _bucket_rights(bucket, access)
    publish += bus.requests
    subscribe = [f"{inbox_prefix(service)}.>", *bus.answers]
    return Permissions(
        publish=_unique(publish),
        subscribe=_unique(subscribe),
        publish_deny=_unique(bus.denied),
        allow_responses=bool(bus.answers),
    )


def admin_permissions() -> Permissions:
    """Every right (tests, tooling); its inbox is nats.py's default."""
    return Permissions(publish=(">",), subscribe=(">",))


def identity_permissions(identity: str) -> Permissions:
    """The rights of ``identity``: a service's name or :data:`ADMIN`."""
    return admin_permissions() if identity == ADMIN else service_permissions(identity)


IDENTITIES: tuple[str, ...] = (*subjects.SERVICES, ADMIN)
"""Every identity a Ferry deployment has on NATS."""


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
