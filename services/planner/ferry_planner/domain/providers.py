"""Provider records as the planner owns them: settings, generation, and the rules on names."""

import msgspec

from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus


class ProviderRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's settings (never its secret) and how many times they were set."""

    spec: ProviderSpec
    generation: int = 1


def effective_status(record: ProviderRecord, status: ProviderStatus | None) -> ProviderStatus:
    """The status to show: 'connecting' until the inventory reports on this generation."""
    if status is None or status.generation < record.generation:
        return ProviderStatus(phase=ProviderPhase.CONNECTING, generation=record.generation)
    return status
