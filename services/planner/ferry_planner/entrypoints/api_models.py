"""Request bodies of the planner API (pydantic, so they appear in the OpenAPI docs).

Every name and reference is constrained here (``ferry_shared.api_fields``), so a bad
one is refused with 422 before anything is stored: Ferry's own names and Kubernetes
names are DNS-1123, source objects are named by up to 255 characters without control
characters, and lists are bounded so that a map or a plan always fits in one record of
the planner's bucket.
"""

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ferry_shared.api_fields import (
    Dns1123Label,
    Dns1123Subdomain,
    LongText,
    NadRef,
    OptionalDns1123Label,
    PemText,
    ShortText,
    SourceRef,
    Thumbprint,
    Url,
)

MAX_VMS = 5000
"""VMs in one plan (and named in one cancel)."""
MAX_PAIRS = 1000
"""Pairs in one NetworkMap or StorageMap."""
MAX_RECORD_BYTES = 900_000
"""A stored map or plan, encoded: the bucket keeps values up to 1 MiB."""
MAX_PASSWORD = 1024
MAX_KUBECONFIG = 200_000
"""Characters of a kubeconfig (stored alone, as one value of at most 1 MiB)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Stored(_Strict):
    """A body stored as one record: refused when its encoding would not fit."""

    @model_validator(mode="after")
    def _fits_in_one_record(self) -> Self:
        size = len(self.model_dump_json().encode())
        if size > MAX_RECORD_BYTES:
            raise ValueError(f"{size} bytes encoded, at most {MAX_RECORD_BYTES} fit: fewer entries or shorter names")
        return self


class ProviderIn(_Strict):
    """A provider to add. ``password`` and ``kubeconfig`` are stored apart and never returned."""

    name: Dns1123Label
    type: Literal["vsphere", "kubernetes", "local"]
    url: Url = Field("", description="https://vcenter.example.com/sdk or just a host (vsphere)")
    username: ShortText = ""
    password: Annotated[SecretStr | None, Field(max_length=MAX_PASSWORD)] = None
    ca_bundle: PemText = Field("", description="PEM certificates the vCenter's certificate must chain to")
    thumbprint: Thumbprint = Field("", description="SHA-256 of the vCenter's certificate, hex (AB:CD:…)")
    insecure: bool = False
    kubeconfig: Annotated[SecretStr | None, Field(max_length=MAX_KUBECONFIG)] = None
    context: ShortText = Field("", description="context of the kubeconfig (kubernetes)")
    in_cluster: bool = False
    path: LongText = Field("", description="target directory (local)")


class ProviderPatchIn(_Strict):
    """Settings of a provider to change; a field left out stays as it is, ``""`` clears it.
    ``password`` and ``kubeconfig`` are stored apart and never returned. The type cannot
    change (422); while a migration uses the provider, ``url``, ``context``, ``in_cluster``,
    ``path`` and a kubeconfig for another server or context are refused (409
    ``provider_in_use``), while the password, user name and certificate trust may change."""

    type: Literal["vsphere", "kubernetes", "local"] | None = Field(
        None, description="only to check: a provider's type cannot be changed"
    )
    url: Url | None = Field(None, description="vsphere: https://vcenter.example.com/sdk or just a host")
    username: ShortText | None = None
    password: Annotated[SecretStr | None, Field(max_length=MAX_PASSWORD)] = None
    ca_bundle: PemText | None = Field(None, description="vsphere: PEM certificates the vCenter's must chain to")
    thumbprint: Thumbprint | None = Field(None, description="vsphere: SHA-256 of the vCenter's certificate, hex")
    insecure: bool | None = None
    kubeconfig: Annotated[SecretStr | None, Field(max_length=MAX_KUBECONFIG)] = None
    context: ShortText | None = Field(None, description="kubernetes: context of the kubeconfig")
    in_cluster: bool | None = None
    path: LongText | None = Field(None, description="local: target directory")


class NetworkPairIn(_Strict):
    source: SourceRef = Field(description="source network, by name or id")
    destination: Literal["pod", "multus", "ignored"]
    nad: NadRef = Field("", description="namespace/name of the NetworkAttachmentDefinition (multus only)")


class StoragePairIn(_Strict):
    source: SourceRef = Field(description="source datastore, by name or id")
    storage_class: Dns1123Subdomain
    volume_mode: Literal["", "Filesystem", "Block"] = ""
    access_mode: Literal["", "ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod", "ReadOnlyMany"] = ""


class NetworkMapIn(_Stored):
    name: Dns1123Label
    source_provider: Dns1123Label
    target_provider: Dns1123Label
    pairs: list[NetworkPairIn] = Field(max_length=MAX_PAIRS)


class StorageMapIn(_Stored):
    name: Dns1123Label
    source_provider: Dns1123Label
    target_provider: Dns1123Label
    pairs: list[StoragePairIn] = Field(max_length=MAX_PAIRS)


class PlanVmIn(_Strict):
    ref: SourceRef = Field(description="VM name or id")
    target_name: OptionalDns1123Label = Field("", description="the VM's name on the target (DNS-1123 label)")


class PlanIn(_Stored):
    name: Dns1123Label
    source_provider: Dns1123Label
    target_provider: Dns1123Label
    network_map: Dns1123Label
    storage_map: Dns1123Label
    target_namespace: Dns1123Label
    vms: list[PlanVmIn] = Field(max_length=MAX_VMS)
    type: Literal["cold"] = "cold"


class MigrationIn(_Strict):
    """A migration to start: the plan to run, and optionally the migration's name."""

    plan: Dns1123Label
    name: OptionalDns1123Label = Field("", description="defaults to <plan>-<n>")


class CancelIn(_Strict):
    """VMs to cancel, by id or name; empty means every unfinished VM."""

    vms: list[SourceRef] = Field(default_factory=list, max_length=MAX_VMS)
