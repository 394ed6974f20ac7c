"""The inventory's provider use cases with hand-written fakes behind its ports: which
watcher runs, what is stored, and when a connect is refused."""

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import cast

import pytest

from ferry_inventory.domain.power import SourceVm
from ferry_inventory.handlers import connect_provider, disconnect_provider, handler_table
from ferry_shared.bus.delivery import Delivery
from ferry_shared.credentials import Secret
from ferry_shared.errors import PermanentError
from ferry_shared.messages import Message
from ferry_shared.migrations import PowerOffSourceVm, RestoreSourcePowerState
from ferry_shared.providers import ConnectProvider, DisconnectProvider, ProviderConnection, ProviderSpec

VSPHERE = ProviderSpec(name="vc", type="vsphere", url="https://vc.example.com", username="u")
LOCAL = ProviderSpec(name="disk", type="local", path="/srv/ferry")
DELIVERY = cast(Delivery, object())  # the provider handlers never touch their delivery


@dataclass
class FakeWatchers:
    """The Watchers port: which watcher runs for which provider, and what was asked, in order."""

    running: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, provider: str) -> asyncio.Lock:
        return self.locks.setdefault(provider, asyncio.Lock())

    def generation(self, provider: str) -> int | None:
        return self.running.get(provider)

    async def start(self, spec: ProviderSpec, secret: Secret | None, generation: int) -> None:
        assert self.lock(spec.name).locked(), "a watcher starts under its provider's lock"
        shown = secret.reveal() if secret else None
        self.calls.append(f"start {spec.name} {generation} {shown}")
        self.running[spec.name] = generation

    async def forget(self, provider: str) -> None:
        assert self.lock(provider).locked(), "a watcher is forgotten under its provider's lock"
        self.calls.append(f"forget {provider}")
        self.running.pop(provider, None)


@dataclass
class FakeConnections:
    stored: dict[str, ProviderConnection] = field(default_factory=dict)

    async def put(self, connection: ProviderConnection) -> None:
        self.stored[connection.provider.name] = connection

    async def delete(self, provider: str) -> None:
        self.stored.pop(provider, None)


@dataclass
class FakeCredentials:
    secrets: dict[str, str] = field(default_factory=dict)

    async def get(self, provider: str) -> Secret | None:
        value = self.secrets.get(provider)
        return Secret(value) if value is not None else None


class World:
    def __init__(self, **secrets: str) -> None:
        self.watchers = FakeWatchers()
        self.connections = FakeConnections()
        self.credentials = FakeCredentials(dict(secrets))

    async def connect(self, spec: ProviderSpec, generation: int) -> None:
        command = ConnectProvider(message_id=f"c{generation}", provider=spec, generation=generation)
        await connect_provider(
            command,
            DELIVERY,
            watchers=self.watchers,
            connections=self.connections,
            credentials=self.credentials,
        )

    async def disconnect(self, name: str) -> None:
        command = DisconnectProvider(message_id=f"d-{name}", provider_name=name)
        await disconnect_provider(command, DELIVERY, watchers=self.watchers, connections=self.connections)


async def test_a_connect_stores_the_provider_and_starts_its_watcher_with_its_secret() -> None:
    world = World(vc="s3cret")
    await world.connect(VSPHERE, 1)
    assert world.watchers.calls == ["start vc 1 s3cret"]
    assert world.connections.stored["vc"] == ProviderConnection(provider=VSPHERE, generation=1)


async def test_a_newer_generation_restarts_the_watcher_and_an_older_one_is_ignored() -> None:
    world = World(vc="s3cret")
    await world.connect(VSPHERE, 2)
    await world.connect(VSPHERE, 2)  # redelivered
    await world.connect(VSPHERE, 1)  # stale
    await world.connect(VSPHERE, 3)
    assert world.watchers.calls == ["start vc 2 s3cret", "start vc 3 s3cret"]
    assert world.connections.stored["vc"].generation == 3


async def test_a_vsphere_provider_without_stored_credentials_is_refused() -> None:
    world = World()
    with pytest.raises(PermanentError) as refused:
        await world.connect(VSPHERE, 1)
    assert refused.value.code == "credentials_missing"
    assert world.watchers.calls == []
    assert world.connections.stored == {}


async def test_a_local_target_needs_no_credentials() -> None:
    world = World()
    await world.connect(LOCAL, 1)
    assert world.watchers.calls == ["start disk 1 None"]


async def test_a_disconnect_deletes_the_connection_and_forgets_the_inventory() -> None:
    world = World(vc="s3cret")
    await world.connect(VSPHERE, 1)
    await world.disconnect("vc")
    assert world.watchers.calls == ["start vc 1 s3cret", "forget vc"]
    assert world.connections.stored == {}


class NoPower:
    def vm(self, provider: ProviderSpec, password: Secret, vm_id: str) -> AbstractAsyncContextManager[SourceVm]:
        raise AssertionError("not called")


class NoPublisher:
    async def publish(self, message: Message) -> object:
        raise AssertionError("not called")


def test_the_table_routes_every_command_of_the_inventory() -> None:
    world = World()
    table = handler_table(
        watchers=world.watchers,
        connections=world.connections,
        credentials=world.credentials,
        power=NoPower(),
        publisher=NoPublisher(),
    )
    assert set(table) == {ConnectProvider, DisconnectProvider, PowerOffSourceVm, RestoreSourcePowerState}
