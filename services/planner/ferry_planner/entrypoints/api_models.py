"""Request bodies of the planner API (pydantic, so they appear in the OpenAPI docs)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ProviderIn(BaseModel):
    """A provider to add. ``password`` and ``kubeconfig`` are stored apart and never returned."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: Literal["vsphere", "kubernetes", "local"]
    url: str = ""
    username: str = ""
    password: SecretStr | None = None
    ca_bundle: str = ""
    thumbprint: str = ""
    insecure: bool = False
    kubeconfig: SecretStr | None = None
    context: str = ""
    in_cluster: bool = False
    path: str = ""


class NetworkPairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    destination: Literal["pod", "multus", "ignored"]
    nad: str = Field("", description="namespace/name of the NetworkAttachmentDefinition (multus only)")


class StoragePairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    storage_class: str
    volume_mode: Literal["", "Filesystem", "Block"] = ""
    access_mode: Literal["", "ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod", "ReadOnlyMany"] = ""


class NetworkMapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source_provider: str
    target_provider: str
    pairs: list[NetworkPairIn]


class StorageMapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source_provider: str
    target_provider: str
    pairs: list[StoragePairIn]


class PlanVmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description="VM name or id")
    target_name: str = ""


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source_provider: str
    target_provider: str
    network_map: str
    storage_map: str
    target_namespace: str
    vms: list[PlanVmIn]
    type: Literal["cold"] = "cold"


class MigrationIn(BaseModel):
    """A migration to start: the plan to run, and optionally the migration's name."""

    model_config = ConfigDict(extra="forbid")

    plan: str
    name: str = Field("", description="defaults to <plan>-<n>")


class CancelIn(BaseModel):
    """VMs to cancel, by id or name; empty means every unfinished VM."""

    model_config = ConfigDict(extra="forbid")

    vms: list[str] = Field(default_factory=list)
