"""The port between the source-power use cases and the provider adapter that powers VMs.

The handlers decide *what* to do with a source VM (record its state, ask the guest to
shut down, fall back to a hard power-off, power it back on); a :class:`SourcePower`
opens one logged-in :class:`SourceVm` per command and does each step, waiting on the
provider's own change feed rather than polling.
"""

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderSpec


class VmNotFoundError(Exception):
    """The VM's managed object id names nothing on the provider (any more)."""

    def __init__(self, vm_id: str) -> None:
        super().__init__(f"no VM {vm_id}")
        self.vm_id = vm_id


@dataclass(frozen=True)
class VmPower:
    """What a VM's power looks like now."""

    power_state: str  # poweredOn | poweredOff | suspended (ferry_shared.inventory.PowerState)
    tools_running: bool  # VMware Tools run in the guest, so it can be asked to shut down


class SourceVm(Protocol):
    """One VM on a logged-in source provider."""

    async def read(self) -> VmPower:
        """The VM's power state and whether its guest tools run."""

    async def shutdown_guest(self) -> bool:
        """Ask the guest OS to shut down; False when the guest cannot be asked (tools stopped,
        VM not on). Returns once the request is accepted, not when the VM is off."""

    async def wait_powered_off(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until the VM is powered off; False when it is not by then."""

    async def power_off(self) -> None:
        """Power the VM off hard and wait until it is (nothing to do when it already is)."""

    async def power_on(self) -> None:
        """Power the VM on and wait until it is (nothing to do when it already is)."""


class SourcePower(Protocol):
    """Opens a session to a source provider for the steps on one VM."""

    def vm(self, provider: ProviderSpec, password: Secret, vm_id: str) -> AbstractAsyncContextManager[SourceVm]:
        """Log in, yield the VM (a :class:`VmNotFoundError` when first read if it does not
        exist), log out after."""
