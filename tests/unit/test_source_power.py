"""The inventory's source-power use cases with a hand-written VM behind the SourcePower port:
what the simulator cannot show (a guest that ignores the shutdown request) and how
adapter failures become handler errors."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import msgspec
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from ferry_inventory.domain.power import SourceVm, VmNotFoundError, VmPower
from ferry_inventory.handlers import VmLocks, power_off_source_vm, restore_source_power_state
from ferry_shared.bus.delivery import Delivery
from ferry_shared.bus.publisher import Publisher
from ferry_shared.credentials import Secret
from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.messages import Message, decoder_for
from ferry_shared.migrations import (
    PowerOffSourceVm,
    RestoreSourcePowerState,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourcePowerStateRestored,
    SourceVmPoweredOff,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.errors import INVALID_LOGIN, UNREACHABLE, ProviderError, StoppedError
from ferry_testpeers.waiting import eventually

SPEC = ProviderSpec(name="vc", type="vsphere", url="https://vc.example.com", username="u")
_decoder = decoder_for(
    [SourcePowerStateRecorded, SourcePowerOffRequested, SourceVmPoweredOff, SourcePowerStateRestored]
)


class FakeVm:
    """A VM whose guest may ignore shutdown requests; ``release`` gates the guest-shutdown wait."""

    def __init__(self, power_state: str = "poweredOn", *, tools: bool = True, guest_obeys: bool = True) -> None:
        self.power = VmPower(power_state=power_state, tools_running=tools)
        self.guest_obeys = guest_obeys
        self.calls: list[str] = []
        self.release: asyncio.Event | None = None

    async def read(self) -> VmPower:
        self.calls.append("read")
        return self.power

    async def shutdown_guest(self) -> bool:
        self.calls.append("shutdown_guest")
        if self.guest_obeys:
            self._set("poweredOff")
        return True

    async def wait_powered_off(self, seconds: float) -> bool:
        self.calls.append(f"wait {seconds:g}s")
        if self.release is not None:
            await self.release.wait()
        return self.power.power_state == "poweredOff"

    async def power_off(self) -> None:
        self.calls.append("power_off")
        self._set("poweredOff")

    async def power_on(self) -> None:
        self.calls.append("power_on")
        self._set("poweredOn")

    def _set(self, state: str) -> None:
        self.power = VmPower(power_state=state, tools_running=self.power.tools_running)


class FakePower:
    """The SourcePower port: one VM, or an error when a session is opened."""

    def __init__(self, vm: FakeVm | None = None, error: Exception | None = None) -> None:
        self._vm = vm or FakeVm()
        self._error = error
        self.passwords: list[str] = []

    @contextlib.asynccontextmanager
    async def vm(self, provider: ProviderSpec, password: Secret, vm_id: str) -> AsyncIterator[SourceVm]:
        self.passwords.append(password.reveal())
        if self._error is not None:
            raise self._error
        yield self._vm


class FakeJetStream:
    def __init__(self) -> None:
        self.published: list[Message] = []

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> Any:
        self.published.append(_decoder.decode(payload))
        return SimpleNamespace(duplicate=False)


class FakeCredentials:
    async def get(self, provider: str) -> Secret | None:
        return Secret("s3cret")


class FakeMsg:
    subject = "ferry.cmd.inventory.power_off_source_vm"

    async def in_progress(self) -> None:
        pass


class CountingLocks(VmLocks):
    """VmLocks that count how often a handler asked for a VM's lock."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def of(self, provider: str, vm_id: str) -> asyncio.Lock:
        self.asked += 1
        return super().of(provider, vm_id)


class World:
    def __init__(self, power: FakePower) -> None:
        self.power = power
        self.js = FakeJetStream()
        self.locks = CountingLocks()
        self.deps: dict[str, Any] = {
            "power": power,
            "credentials": FakeCredentials(),
            "publisher": Publisher(cast(JetStreamContext, self.js)),
            "locks": self.locks,
        }

    def restore_waiting(self) -> bool:
        """A second handler asked for the VM's lock while the first still holds it."""
        return self.locks.asked >= 2 and VmLocks.of(self.locks, SPEC.name, "vm-7").locked()

    @staticmethod
    def delivery() -> Delivery:
        return Delivery(cast(Msg, FakeMsg()), attempt=1, ack_wait=30.0)

    async def power_off(self, **options: Any) -> None:
        command = PowerOffSourceVm(message_id="c1", migration="m", vm_id="vm-7", source=SPEC, **options)
        await power_off_source_vm(command, self.delivery(), **self.deps)

    async def restore(self, power_state: str) -> None:
        command = RestoreSourcePowerState(
            message_id="c2", migration="m", vm_id="vm-7", source=SPEC, power_state=power_state
        )
        await restore_source_power_state(command, self.delivery(), **self.deps)

    def steps(self) -> list[str]:
        names = []
        for event in self.js.published:
            match event:
                case SourcePowerStateRecorded(power_state=state):
                    names.append(f"recorded:{state}")
                case SourcePowerOffRequested(method=method):
                    names.append(f"requested:{method}")
                case SourceVmPoweredOff():
                    names.append("powered_off")
                case SourcePowerStateRestored(power_state=state):
                    names.append(f"restored:{state}")
        return names


async def test_a_guest_that_does_not_shut_down_in_time_is_powered_off_hard() -> None:
    vm = FakeVm(guest_obeys=False)
    world = World(FakePower(vm))
    await world.power_off(shutdown_timeout_seconds=42.0)
    assert vm.calls == ["read", "shutdown_guest", "wait 42s", "power_off"]
    assert world.steps() == ["recorded:poweredOn", "requested:guest_shutdown", "requested:power_off", "powered_off"]
    ids = [event.message_id for event in world.js.published]
    assert ids == [
        "m:vm-7:power_state_recorded",
        "m:vm-7:power_off_requested:guest_shutdown",
        "m:vm-7:power_off_requested:power_off",
        "m:vm-7:powered_off",
    ]
    assert world.power.passwords == ["s3cret"]


async def test_a_guest_that_shuts_down_is_not_powered_off_hard() -> None:
    vm = FakeVm()
    world = World(FakePower(vm))
    await world.power_off()
    assert vm.calls == ["read", "shutdown_guest", "wait 300s"]
    assert world.steps() == ["recorded:poweredOn", "requested:guest_shutdown", "powered_off"]


async def test_a_restore_waits_for_a_power_off_of_the_same_vm() -> None:
    vm = FakeVm()
    vm.release = asyncio.Event()
    world = World(FakePower(vm))
    powering_off = asyncio.create_task(world.power_off())
    restoring = asyncio.create_task(world.restore("poweredOn"))
    await eventually(lambda: "wait 300s" in vm.calls, timeout=5, what="the power-off to wait for the guest")
    await eventually(world.restore_waiting, timeout=5, what="the restore to wait for the VM's lock")
    assert vm.calls == ["read", "shutdown_guest", "wait 300s"], "the restore has not read the VM yet"
    vm.release.set()
    await asyncio.wait_for(asyncio.gather(powering_off, restoring), 5.0)
    assert vm.calls[3:] == ["read", "power_on"]
    assert world.steps()[-1] == "restored:poweredOn"


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (VmNotFoundError("vm-7"), PermanentError, "vm_not_found"),
        (ProviderError(INVALID_LOGIN, "refused"), PermanentError, INVALID_LOGIN),
        (ProviderError(UNREACHABLE, "no answer"), TemporaryError, UNREACHABLE),
        (StoppedError(), TemporaryError, "stopping"),
    ],
)
async def test_adapter_failures_become_permanent_or_temporary_errors(
    error: Exception, kind: type[Exception], code: str
) -> None:
    world = World(FakePower(error=error))
    with pytest.raises(kind) as raised:
        await world.power_off()
    assert getattr(raised.value, "code", None) == code
    assert world.js.published == []
    if code == "vm_not_found":
        assert str(raised.value) == "vm_not_found: source VM vm-7 no longer exists on vc; refresh the plan"


async def test_only_vsphere_sources_are_powered() -> None:
    world = World(FakePower())
    command = PowerOffSourceVm(
        message_id="c1", migration="m", vm_id="vm-7", source=msgspec.structs.replace(SPEC, type="local")
    )
    with pytest.raises(PermanentError, match="unsupported_provider"):
        await power_off_source_vm(command, world.delivery(), **world.deps)
