"""Provider records as the planner owns them: settings, generation, and what a change of
them may touch."""

import msgspec

from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus, ProviderType


class ProviderRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's settings (never its secret) and how many times they were set."""

    spec: ProviderSpec
    generation: int = 1


def effective_status(record: ProviderRecord, status: ProviderStatus | None) -> ProviderStatus:
    """The status to show: 'connecting' until the inventory reports on this generation."""
    if status is None or status.generation < record.generation:
        return ProviderStatus(phase=ProviderPhase.CONNECTING, generation=record.generation)
    return status


CHANGEABLE: dict[ProviderType, frozenset[str]] = {
    "vsphere": frozenset({"url", "username", "password", "ca_bundle", "thumbprint", "insecure"}),
    "kubernetes": frozenset({"kubeconfig", "context", "in_cluster"}),
    "local": frozenset({"path"}),
}
"""The settings ``PATCH /providers/{name}`` may change, per type (a secret by its field name)."""
WHERE_FIELDS = ("url", "context", "in_cluster", "path")
"""Settings that say where a provider is: not changed while a migration uses the provider
(its credentials and certificate trust may be)."""
TRUST_FIELDS = ("url", "ca_bundle", "thumbprint", "insecure")
"""A vsphere provider's settings that decide which server its password is sent to: a change
of any of them needs the password given again, so the stored one never goes to a server it
was not given for."""


class ProviderChange(msgspec.Struct, frozen=True, kw_only=True):
    """The settings to change: each one given (not None) replaces the stored one."""

    url: str | None = None
    username: str | None = None
    ca_bundle: str | None = None
    thumbprint: str | None = None
    insecure: bool | None = None
    context: str | None = None
    in_cluster: bool | None = None
    path: str | None = None

    def given(self) -> dict[str, object]:
        return {name: value for name in self.__struct_fields__ if (value := getattr(self, name)) is not None}

    def applied_to(self, spec: ProviderSpec) -> ProviderSpec:
        return msgspec.structs.replace(spec, **self.given())


def moved(before: ProviderSpec, after: ProviderSpec) -> list[str]:
    """The settings that point ``after`` somewhere else than ``before``."""
    return [name for name in WHERE_FIELDS if getattr(before, name) != getattr(after, name)]


def trust_changes(before: ProviderSpec, after: ProviderSpec) -> list[str]:
    """The settings of :data:`TRUST_FIELDS` that differ between ``before`` and ``after``."""
    return [name for name in TRUST_FIELDS if getattr(before, name) != getattr(after, name)]
