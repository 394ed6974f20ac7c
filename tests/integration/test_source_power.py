"""Powering source VMs off and on through the inventory service (its bootstrap, its
command consumer) against ferry-vcsim and a real nats-server.

The simulator's ``ShutdownGuest`` powers the VM off at once, tools or not, so a guest
that ignores the request (and the hard power-off after ``shutdown_timeout_seconds``)
cannot be reproduced here; tests/unit/test_source_power.py covers that decision.
"""

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import pytest
from nats.aio.msg import Msg
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from ferry_inventory.adapters.vsphere.power import PowerSettings, VspherePower, VsphereVm
from ferry_inventory.bootstrap import bootstrap
from ferry_inventory.settings import InventorySettings
from ferry_peers.vcsim import Vcsim
from ferry_shared import subjects
from ferry_shared.credential_stores.choice import open_credential_store
from ferry_shared.credentials import Secret
from ferry_shared.messages import Message, MessageFailed, StepRef, decoder_for
from ferry_shared.migrations import (
    PowerOffSourceVm,
    RestoreSourcePowerState,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourcePowerStateRestored,
    SourceVmPoweredOff,
)
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus
from ferry_shared.settings import ServiceSettings
from ferry_shared.vsphere.errors import ProviderError, StoppedError
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import async_wait_for, eventually

from .service_runner import commands_spec, running_parts

pytestmark = [pytest.mark.vsphere, pytest.mark.nats]

MIGRATION = "mig-1"
PROVIDER = "vc"
TIMEOUT = 20.0

EVENT_TYPES: tuple[type[Message], ...] = (
    SourcePowerStateRecorded,
    SourcePowerOffRequested,
    SourceVmPoweredOff,
    SourcePowerStateRestored,
    MessageFailed,
)
_decoder = decoder_for(EVENT_TYPES)


def _vm(name: str, power_state: str, **spec: Any) -> dict[str, Any]:
    return {"name": name, "power_state": power_state, "disks": [{"capacity": "1MiB"}], **spec}


MODEL: dict[str, Any] = {
    "datacenters": [
        {
            "name": "DC0",
            "datastores": [{"name": "LocalDS_0"}],
            "clusters": [{"name": "C0", "hosts": [{"name": "esx-01"}]}],
            "vms": [
                _vm("tools-on", "poweredOn", guest={"tools": "running"}),
                _vm("tools-off", "poweredOn", guest={"tools": "notRunning"}),
                _vm("off", "poweredOff"),
                _vm("asleep", "suspended"),
            ],
        }
    ]
}


@dataclass
class EventLog:
    """Every event published since the test began: decoded (ours) and raw (all)."""

    raw: list[bytes] = field(default_factory=list)
    events: list[Message] = field(default_factory=list)

    async def on_message(self, msg: Msg) -> None:
        self.raw.append(msg.data + b"".join(f"{k}:{v}".encode() for k, v in (msg.headers or {}).items()))
        with contextlib.suppress(msgspec.DecodeError):  # someone else's event
            self.events.append(_decoder.decode(msg.data))

    def of(self, kind: type[Message], vm_id: str | None = None) -> list[Any]:
        return [
            event
            for event in self.events
            if isinstance(event, kind) and (vm_id is None or getattr(event, "vm_id", vm_id) == vm_id)
        ]

    async def first(self, kind: type[Message], vm_id: str | None = None) -> Any:
        async def probe() -> Any:
            found = self.of(kind, vm_id)
            return found[0] if found else None

        return await async_wait_for(probe, timeout=TIMEOUT, what=f"a {kind.__name__} event")

    def steps(self, vm_id: str) -> list[str]:
        """The power events of one VM, in order, as short names."""
        names = []
        for event in self.of(Message, vm_id):
            if isinstance(event, SourcePowerStateRecorded):
                names.append(f"recorded:{event.power_state}")
            elif isinstance(event, SourcePowerOffRequested):
                names.append(f"requested:{event.method}")
            elif isinstance(event, SourceVmPoweredOff):
                names.append("powered_off")
            elif isinstance(event, SourcePowerStateRestored):
                names.append(f"restored:{event.power_state}")
        return names


def moref(simulator: Vcsim, name: str) -> str:
    """The managed object id (``vm-42``) of the simulator's VM ``name``."""
    response = httpx.get(f"{simulator.control_url}/vms/{name}")
    response.raise_for_status()
    return str(response.json()["moref"])


@dataclass
class Source:
    """The simulator seen from the test: morefs, power states and vCenter's own event log."""

    simulator: Vcsim
    si: vim.ServiceInstance

    def moref(self, name: str) -> str:
        return moref(self.simulator, name)

    def vm(self, moref: str) -> vim.VirtualMachine:
        return vim.VirtualMachine(moref, self.si._stub)

    def power_state(self, moref: str) -> str:
        return str(self.vm(moref).runtime.powerState)

    def vcenter_events(self, moref: str) -> list[str]:
        """Type names of the events vCenter logged for the VM (guest shutdown, stopping, …)."""
        by_entity = vim.event.EventFilterSpec.ByEntity(entity=self.vm(moref), recursion="self")
        found = self.si.content.eventManager.QueryEvents(vim.event.EventFilterSpec(entity=by_entity))
        return [type(event).__name__.rsplit(".", 1)[-1] for event in found]

    def add_fault(self, rule: dict[str, Any]) -> str:
        response = httpx.post(f"{self.simulator.control_url}/faults", json=rule)
        response.raise_for_status()
        return str(response.json()["id"])

    def fired(self, rule_id: str) -> int:
        rules = httpx.get(f"{self.simulator.control_url}/faults").json()
        return int(next(rule["fired"] for rule in rules if rule["id"] == rule_id))


@dataclass
class Harness:
    bus: Bus
    source: Source
    spec: ProviderSpec
    log: EventLog

    async def power_off(self, vm_id: str, message_id: str = "", **options: Any) -> None:
        command = PowerOffSourceVm(
            message_id=message_id or f"off-{vm_id}", migration=MIGRATION, vm_id=vm_id, source=self.spec, **options
        )
        await self.bus.publisher.publish(command)

    async def restore(self, vm_id: str, power_state: str, message_id: str = "") -> None:
        command = RestoreSourcePowerState(
            message_id=message_id or f"restore-{vm_id}",
            migration=MIGRATION,
            vm_id=vm_id,
            source=self.spec,
            power_state=power_state,
        )
        await self.bus.publisher.publish(command)

    async def all_handled(self) -> None:
        """Wait until the inventory's consumer has ended every command published so far."""

        async def probe() -> bool:
            stream = await self.bus.js.stream_info(subjects.COMMANDS_STREAM)
            return stream.state.messages == 0  # a work queue drops a message once it is acked or termed

        await async_wait_for(probe, timeout=TIMEOUT, what="every command handled")

    async def state(self, moref: str) -> str:
        return await asyncio.to_thread(self.source.power_state, moref)


def simulated_source(vcsim_factory: VcsimFactory) -> tuple[Vcsim, ProviderSpec]:
    """A simulator of :data:`MODEL` and a provider for it (trusted without a CA: these tests use the adapter alone)."""
    simulator = vcsim_factory(model=MODEL)
    spec = ProviderSpec(
        name=PROVIDER, type="vsphere", url=simulator.sdk_url, username=simulator.username, insecure=True
    )
    return simulator, spec


def connect(simulator: Vcsim) -> vim.ServiceInstance:
    host, port = simulator.host.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(simulator.certificate_path))
    return SmartConnect(host=host, port=int(port), user=simulator.username, pwd=simulator.password, sslContext=context)


@asynccontextmanager
async def inventory_service(bus: Bus, password: str) -> AsyncIterator[None]:
    """The inventory service's bootstrap and command consumer, as run_service wires them."""
    credentials = await open_credential_store(bus.js, ServiceSettings())
    await credentials.put(PROVIDER, Secret(password))
    inventory = await bootstrap(bus, ServiceSettings(), InventorySettings())
    spec = commands_spec(subjects.INVENTORY, ack_wait=5.0, max_deliver=3, fetch_timeout=0.2)
    async with running_parts(bus, inventory.parts, spec):
        yield


@asynccontextmanager
async def harness(bus: Bus, vcsim_factory: VcsimFactory, password: str | None = None) -> AsyncIterator[Harness]:
    simulator = vcsim_factory(model=MODEL)
    spec = ProviderSpec(
        name=PROVIDER,
        type="vsphere",
        url=simulator.sdk_url,
        username=simulator.username,
        ca_bundle=simulator.certificate_path.read_text(),
    )
    log = EventLog()
    subscription = await bus.js.subscribe(subjects.ALL_EVENTS, ordered_consumer=True, cb=log.on_message)
    si = await asyncio.to_thread(connect, simulator)
    try:
        async with inventory_service(bus, simulator.password if password is None else password):
            yield Harness(bus=bus, source=Source(simulator, si), spec=spec, log=log)
    finally:
        await subscription.unsubscribe()
        await asyncio.to_thread(Disconnect, si)


async def test_a_vm_with_running_tools_is_shut_down_by_its_guest(bus: Bus, vcsim_factory: VcsimFactory) -> None:
    async with harness(bus, vcsim_factory) as h:
        vm_id = h.source.moref("tools-on")
        await h.power_off(vm_id)
        await h.log.first(SourceVmPoweredOff, vm_id)
        assert h.log.steps(vm_id) == ["recorded:poweredOn", "requested:guest_shutdown", "powered_off"]
        assert await h.state(vm_id) == "poweredOff"
        vcenter = await asyncio.to_thread(h.source.vcenter_events, vm_id)
        assert "VmGuestShutdownEvent" in vcenter
        assert "VmStoppingEvent" not in vcenter, "no hard power-off after the guest shut down"

        # The command again (a redelivery): the VM is off now, and the re-published
        # events carry the same ids, so the stream keeps the first ones.
        await h.power_off(vm_id, message_id="off-again")
        await h.all_handled()
        stored = await bus.js.stream_info(subjects.EVENTS_STREAM)
        published = [e for e in h.log.events if not isinstance(e, MessageFailed)]
        assert stored.state.messages == len(published) == 3
        assert h.log.steps(vm_id) == ["recorded:poweredOn", "requested:guest_shutdown", "powered_off"]


async def test_a_vm_without_running_tools_is_powered_off(bus: Bus, vcsim_factory: VcsimFactory) -> None:
    async with harness(bus, vcsim_factory) as h:
        vm_id = h.source.moref("tools-off")
        await h.power_off(vm_id)
        await h.log.first(SourceVmPoweredOff, vm_id)
        assert h.log.steps(vm_id) == ["recorded:poweredOn", "requested:power_off", "powered_off"]
        assert await h.state(vm_id) == "poweredOff"
        vcenter = await asyncio.to_thread(h.source.vcenter_events, vm_id)
        assert "VmStoppingEvent" in vcenter
        assert "VmGuestShutdownEvent" not in vcenter


async def test_a_guest_that_refuses_to_shut_down_is_powered_off(bus: Bus, vcsim_factory: VcsimFactory) -> None:
    async with harness(bus, vcsim_factory) as h:
        vm_id = h.source.moref("tools-on")
        rule = h.source.add_fault({"method": "ShutdownGuest", "moref": vm_id, "fault": "ToolsUnavailable"})
        await h.power_off(vm_id)
        await h.log.first(SourceVmPoweredOff, vm_id)
        assert h.source.fired(rule) == 1
        assert h.log.steps(vm_id) == ["recorded:poweredOn", "requested:power_off", "powered_off"]
        assert await h.state(vm_id) == "poweredOff"


async def test_a_vm_that_is_off_or_suspended_is_left_as_it_is(bus: Bus, vcsim_factory: VcsimFactory) -> None:
    async with harness(bus, vcsim_factory) as h:
        off, asleep = h.source.moref("off"), h.source.moref("asleep")
        before = {vm_id: await asyncio.to_thread(h.source.vcenter_events, vm_id) for vm_id in (off, asleep)}
        await h.power_off(off)
        await h.power_off(asleep)
        await h.log.first(SourceVmPoweredOff, off)
        await h.log.first(SourceVmPoweredOff, asleep)
        assert h.log.steps(off) == ["recorded:poweredOff", "powered_off"]
        assert h.log.steps(asleep) == ["recorded:suspended", "powered_off"]
        assert (await h.state(off), await h.state(asleep)) == ("poweredOff", "suspended")
        after = {vm_id: await asyncio.to_thread(h.source.vcenter_events, vm_id) for vm_id in (off, asleep)}
        assert after == before, "no power operation was run"


async def test_restore_powers_a_vm_back_on_once(bus: Bus, vcsim_factory: VcsimFactory) -> None:
    async with harness(bus, vcsim_factory) as h:
        vm_id, off = h.source.moref("tools-off"), h.source.moref("off")
        await h.power_off(vm_id)
        recorded = await h.log.first(SourcePowerStateRecorded, vm_id)
        await h.restore(vm_id, recorded.power_state)
        await h.restore(off, "poweredOff")
        restored = await h.log.first(SourcePowerStateRestored, vm_id)
        assert restored.power_state == "poweredOn"
        assert await h.state(vm_id) == "poweredOn"
        assert (await h.log.first(SourcePowerStateRestored, off)).power_state == "poweredOff"
        assert await h.state(off) == "poweredOff"

        await h.restore(vm_id, recorded.power_state, message_id="restore-again")
        await h.all_handled()
        assert h.log.steps(vm_id) == ["recorded:poweredOn", "requested:power_off", "powered_off", "restored:poweredOn"]
        powered_on = (await asyncio.to_thread(h.source.vcenter_events, vm_id)).count("VmPoweredOnEvent")
        assert powered_on == 2, "powered on when the model was built, and once by the restore"


async def test_a_missing_vm_fails_the_command_with_its_names(bus: Bus, vcsim_factory: VcsimFactory) -> None:
    async with harness(bus, vcsim_factory) as h:
        await h.power_off("vm-424242")
        failed: MessageFailed = await h.log.first(MessageFailed)
        assert failed.about == StepRef(migration=MIGRATION, vm_id="vm-424242")
        assert failed.error_code == "vm_not_found"
        assert failed.reason == f"source VM vm-424242 no longer exists on {PROVIDER}; refresh the plan"
        assert failed.failed_type == PowerOffSourceVm.type_tag()
        assert failed.attempts == 1
        assert h.log.steps("vm-424242") == []


async def test_a_refused_login_fails_the_command_without_the_password(
    bus: Bus, vcsim_factory: VcsimFactory, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-Passw0rd-5ecret"
    caplog.set_level(logging.DEBUG)
    async with harness(bus, vcsim_factory, password=wrong) as h:
        vm_id = h.source.moref("tools-on")
        await h.power_off(vm_id)
        failed: MessageFailed = await h.log.first(MessageFailed)
        assert failed.about == StepRef(migration=MIGRATION, vm_id=vm_id)
        assert failed.error_code == "invalid_login"
        assert "refused the user name" in failed.reason
        assert failed.attempts == 1, "a refused login is not retried (SSO would lock the user out)"
        assert await h.state(vm_id) == "poweredOn"
        secrets = (wrong, h.source.simulator.password)
    everything = b"\n".join(h.log.raw).decode() + caplog.text
    assert not any(secret in everything for secret in secrets)


async def test_the_power_off_wait_has_a_deadline_and_ends_at_once_on_stop(vcsim_factory: VcsimFactory) -> None:
    simulator, spec = simulated_source(vcsim_factory)
    vm_id = await asyncio.to_thread(moref, simulator, "tools-on")
    power = VspherePower(PowerSettings(max_wait_seconds=60))
    async with power.vm(spec, Secret(simulator.password), vm_id) as vm:
        started = time.monotonic()
        assert await vm.wait_powered_off(1.0) is False, "the VM stays on: nobody asked it to stop"
        assert 0.9 <= time.monotonic() - started < 3.0

        waiting = asyncio.create_task(vm.wait_powered_off(60.0))
        assert isinstance(vm, VsphereVm)
        await eventually(lambda: vm._waiting is not None, timeout=TIMEOUT, what="the long-poll")
        started = time.monotonic()
        power.close()
        with pytest.raises(StoppedError):
            await waiting
        assert time.monotonic() - started < 2.0, "the long-poll was cancelled, not waited out"


async def test_a_failed_power_task_is_an_error_and_the_wanted_state_is_not(vcsim_factory: VcsimFactory) -> None:
    simulator, spec = simulated_source(vcsim_factory)
    vm_id = await asyncio.to_thread(moref, simulator, "tools-off")
    rule = {"method": "PowerOffVM_Task", "moref": vm_id, "fault": "InvalidState", "in_task": True}
    (await asyncio.to_thread(httpx.post, f"{simulator.control_url}/faults", json=rule)).raise_for_status()
    power = VspherePower()
    try:
        async with power.vm(spec, Secret(simulator.password), vm_id) as vm:
            with pytest.raises(ProviderError) as raised:
                await vm.power_off()
            assert raised.value.reason == "api_error"
            assert "InvalidState" in raised.value.message
            assert (await vm.read()).power_state == "poweredOn"
            await asyncio.to_thread(httpx.delete, f"{simulator.control_url}/faults")

            await vm.power_off()
            await vm.power_off()  # already off: nothing to do
            assert (await vm.read()).power_state == "poweredOff"
            await vm.power_on()
            await vm.power_on()
            assert (await vm.read()).power_state == "poweredOn"
    finally:
        power.close()
