"""Provider contracts shared by the planner (which owns provider records) and the
inventory service (which owns the connections).

A provider's secret (vCenter password, kubeconfig) is never part of these records: it
is stored alone (:class:`ferry_shared.credentials.CredentialStore`: sealed in the
``ferry_credentials`` bucket, or a Kubernetes Secret) under the provider's name, written
by the planner and read only by the services that must connect.
"""

from enum import StrEnum
from typing import ClassVar, Literal

import msgspec

from ferry_shared import subjects
from ferry_shared.messages import Command, Event

ProviderType = Literal["vsphere", "kubernetes", "local"]

PROVIDER_NOT_READY = "provider_not_ready"
"""The ``reason`` of the inventory API's 409 for a query on a provider that is not ready."""


class ProviderPhase(StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    ERROR = "error"


class ProviderSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Where a provider is and how to trust it; never a secret.

    vsphere: ``url`` (``https://vcenter.example.com/sdk`` or just a host),
    ``username``, and TLS trust by ``ca_bundle`` (PEM text) or ``thumbprint``
    (SHA-256, colon-separated hex), or ``insecure`` when asked.
    kubernetes: ``context`` of the stored kubeconfig, or ``in_cluster``.
    local: ``path`` of the target directory.
    """

    name: str
    type: ProviderType
    url: str = ""
    username: str = ""
    ca_bundle: str = ""
    thumbprint: str = ""
    insecure: bool = False
    context: str = ""
    in_cluster: bool = False
    path: str = ""


class ProviderConnection(msgspec.Struct, frozen=True, kw_only=True):
    """A provider the inventory service keeps connected (stored so it reconnects after a restart)."""

    provider: ProviderSpec
    generation: int


class ProviderStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the inventory service last knew of a provider's connection."""

    phase: ProviderPhase = ProviderPhase.CONNECTING
    reason: str = ""  # machine-readable: invalid_login, unreachable, thumbprint_mismatch, …
    message: str = ""  # for people: what went wrong and what to do
    counts: dict[str, int] = msgspec.field(default_factory=dict)
    generation: int = 0


class ConnectProvider(Command, frozen=True, kw_only=True, tag="ferry.inventory.connect_provider.v1"):
    """Connect (or reconnect with new settings) and keep the inventory live."""

    subject: ClassVar[str] = subjects.command_subject(subjects.INVENTORY, "connect_provider")
    provider: ProviderSpec
    generation: int


class DisconnectProvider(Command, frozen=True, kw_only=True, tag="ferry.inventory.disconnect_provider.v1"):
    """Stop watching a provider and forget its inventory."""

    subject: ClassVar[str] = subjects.command_subject(subjects.INVENTORY, "disconnect_provider")
    provider_name: str


class ProviderStatusChanged(Event, frozen=True, kw_only=True, tag="ferry.inventory.provider_status_changed.v1"):
    subject: ClassVar[str] = subjects.event_subject(subjects.INVENTORY, "provider_status_changed")
    provider_name: str
    status: ProviderStatus


class InventoryChanged(Event, frozen=True, kw_only=True, tag="ferry.inventory.inventory_changed.v1"):
    """Records of one provider were put or deleted (keys in the inventory bucket)."""

    subject: ClassVar[str] = subjects.event_subject(subjects.INVENTORY, "inventory_changed")
    provider_name: str
    put: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    reloaded: bool = False  # a full reload: too many keys to list; re-read the provider
