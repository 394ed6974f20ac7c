"""Changing a provider over fakes: a new password or setting is a new generation the
inventory is told to connect, the secret goes only to the credential store, the type
never changes, and a provider a migration uses keeps pointing where it points.
A Kubernetes provider is listed with its kubeconfig's API server and context."""

import dataclasses
from typing import Any

import pytest
import yaml

from ferry_planner.domain.providers import ProviderChange, ProviderRecord
from ferry_planner.handlers import providers
from ferry_planner.handlers.errors import ConflictError, InvalidError
from ferry_planner.handlers.providers import add_provider, provider, reconnect_lagging_providers, update_provider
from ferry_planner.handlers.start_migration import start_migration
from ferry_shared.credentials import CredentialsUnreadableError, Secret
from ferry_shared.errors import TemporaryError
from ferry_shared.migrations import CopyDisk
from ferry_shared.providers import ConnectProvider, ProviderPhase, ProviderSpec, ProviderStatus

from .planner_fakes import SOURCE, FakeCredentials, FakeInventory, FakeResources, World, ready_world, source_vm
from .planner_peers import Peers

TOKEN = "t0ken-that-must-not-show"


def kubeconfig(server: str, *, current: str = "main") -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "k1", "cluster": {"server": server}}, {"name": "k2", "cluster": {"server": "https://k2:6443"}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "main", "context": {"cluster": "k1", "user": "u"}},
                     {"name": "other", "context": {"cluster": "k2", "user": "u"}}],
    })  # fmt: skip


def world_with_password() -> World:
    world = ready_world([source_vm(1)])
    credentials = world.ports.credentials
    assert isinstance(credentials, FakeCredentials)
    credentials.secrets["vc"] = Secret("old-password")
    return world


async def test_a_new_password_is_stored_apart_and_the_provider_connects_again_as_a_new_generation() -> None:
    world = world_with_password()
    view = await update_provider(world.ports, "vc", ProviderChange(), Secret("new-password"), secret_field="password")

    assert view.generation == 2
    assert view.status.phase is ProviderPhase.CONNECTING, "until the inventory reports on generation 2"
    credentials = world.ports.credentials
    assert isinstance(credentials, FakeCredentials) and credentials.secrets["vc"].reveal() == "new-password"
    [connect] = world.publisher.of(ConnectProvider)
    assert (connect.provider.name, connect.generation) == ("vc", 2)
    assert "new-password" not in repr(world.publisher.published) + repr(world.changes.changes)
    assert {"kind": "provider", "name": "vc"} in world.changes.changes

    inventory = world.ports.inventory
    assert isinstance(inventory, FakeInventory)
    inventory.set_status("vc", ProviderStatus(phase=ProviderPhase.READY, generation=2))
    assert (await provider(world.ports, "vc")).status.phase is ProviderPhase.READY
    await update_provider(world.ports, "vc", ProviderChange(thumbprint=":".join(["AB"] * 32), insecure=False),
                          Secret("new-password"), secret_field="password")  # fmt: skip
    second = world.publisher.of(ConnectProvider)[-1]
    assert second.generation == 3 and second.provider.thumbprint.startswith("AB:") and not second.provider.insecure
    assert second.message_id != connect.message_id


@pytest.mark.parametrize(
    ("change", "secret_field", "type_", "said"),
    [
        (ProviderChange(), "", "kubernetes", "a provider's type cannot be changed (provider 'vc' is vsphere)"),
        (ProviderChange(), "", None, "nothing to change"),
        (ProviderChange(path="/srv"), "", None, "a vsphere provider has no path to change"),
        (ProviderChange(), "kubeconfig", None, "a vsphere provider has no kubeconfig to change"),
        (ProviderChange(insecure=False), "", None, "say how to trust the vCenter's certificate"),
        (ProviderChange(url=""), "", None, "a vsphere provider needs url and username"),
        (ProviderChange(url="https://elsewhere/sdk"), "", None, "give the password again with a new url"),
        (ProviderChange(thumbprint=":".join(["CD"] * 32)), "", None, "give the password again with a new thumbprint"),
        (ProviderChange(ca_bundle="-----BEGIN CERTIFICATE-----"), "", None, "with a new ca_bundle"),
        (ProviderChange(), "password", None, "the password is empty"),
    ],
)
async def test_a_change_the_provider_cannot_take_is_refused_before_anything_is_stored(
    change: ProviderChange, secret_field: str, type_: str | None, said: str
) -> None:
    world = world_with_password()
    secret = Secret(" " if said == "the password is empty" else "x") if secret_field else None
    with pytest.raises(InvalidError) as refused:
        await update_provider(world.ports, "vc", change, secret, secret_field=secret_field, type_=type_)
    assert said in refused.value.message
    assert world.publisher.published == []
    credentials = world.ports.credentials
    assert isinstance(credentials, FakeCredentials) and credentials.secrets["vc"].reveal() == "old-password"


async def test_a_provider_in_use_takes_a_new_password_or_thumbprint_but_not_a_new_url() -> None:
    world = world_with_password()
    await start_migration(world.ports, "p1")
    await Peers(hold={("vm-1", CopyDisk)}).drive(world)

    with pytest.raises(ConflictError, match="its url cannot change until the migration ends") as refused:
        await update_provider(world.ports, "vc", ProviderChange(url="https://elsewhere/sdk"), Secret("pw"),
                              secret_field="password")  # fmt: skip
    assert refused.value.code == "provider_in_use" and "'p1-1'" in refused.value.message
    credentials = world.ports.credentials
    assert isinstance(credentials, FakeCredentials) and credentials.secrets["vc"].reveal() == "old-password"
    assert world.publisher.of(ConnectProvider) == []

    await update_provider(world.ports, "vc", ProviderChange(username="admin"), Secret("fixed"), secret_field="password")
    assert credentials.secrets["vc"].reveal() == "fixed"
    assert world.publisher.of(ConnectProvider)[-1].provider.username == "admin"


async def test_a_kubernetes_provider_is_listed_with_its_api_server_and_context_never_its_credentials() -> None:
    world = ready_world([source_vm(1)])
    config = kubeconfig("https://admin:pw@10.0.0.1:6443/?token=x")
    view = await add_provider(world.ports, ProviderSpec(name="cluster", type="kubernetes"), Secret(config))
    assert (view.spec.url, view.spec.context) == ("https://10.0.0.1:6443/", "main")
    [connect] = world.publisher.of(ConnectProvider)
    assert (connect.provider.url, connect.provider.context) == ("https://10.0.0.1:6443/", "main")
    assert TOKEN not in repr(view) and "pw" not in view.spec.url

    moved = await update_provider(world.ports, "cluster", ProviderChange(context="other"))
    assert (moved.spec.url, moved.spec.context) == ("https://k2:6443", "other")
    with pytest.raises(InvalidError, match="its URL is its kubeconfig's server"):
        await update_provider(world.ports, "cluster", ProviderChange(url="https://k3:6443"))
    with pytest.raises(InvalidError, match="the kubeconfig has no context named 'nope'") as refused:
        await update_provider(world.ports, "cluster", ProviderChange(context="nope"))
    assert TOKEN not in refused.value.message
    in_cluster = await add_provider(world.ports, ProviderSpec(name="here", type="kubernetes", in_cluster=True), None)
    assert (in_cluster.spec.url, in_cluster.spec.in_cluster) == ("", True)


class LosingResources(FakeResources):
    """Another replica changes every record between this one's read and its write."""

    async def replace(self, kind: type[Any], name: str, value: Any, *, revision: int) -> int | None:
        return None


async def test_a_change_that_loses_to_another_keeps_the_winners_secret_and_tells_nobody() -> None:
    world = world_with_password()
    stored = world.ports.resources
    assert isinstance(stored, FakeResources)
    losing = LosingResources()
    losing.records, losing.revisions = stored.records, stored.revisions
    ports = dataclasses.replace(world.ports, resources=losing)
    with pytest.raises(TemporaryError, match="was changed meanwhile; read it again and retry"):
        await update_provider(ports, "vc", ProviderChange(), Secret("mine"), secret_field="password")
    credentials = world.ports.credentials
    assert isinstance(credentials, FakeCredentials) and credentials.secrets["vc"] == Secret("old-password")
    assert world.publisher.of(ConnectProvider) == []


async def test_a_stored_change_the_inventory_never_heard_of_is_told_again_and_a_known_one_is_not() -> None:
    world = world_with_password()
    stored = world.ports.resources
    assert isinstance(stored, FakeResources)
    stored.put(ProviderRecord, "vc", ProviderRecord(spec=SOURCE, generation=2))  # stored, then a crash
    await reconnect_lagging_providers(world.ports)
    [connect] = world.publisher.of(ConnectProvider)
    assert (connect.provider.name, connect.generation) == ("vc", 2), "'dir' is reported at its generation"
    inventory = world.ports.inventory
    assert isinstance(inventory, FakeInventory)
    inventory.set_status("vc", ProviderStatus(phase=ProviderPhase.READY, generation=2))
    await reconnect_lagging_providers(world.ports)
    assert len(world.publisher.of(ConnectProvider)) == 1


async def test_a_kubernetes_record_stored_without_its_endpoint_takes_a_kubeconfig_for_the_same_server_in_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = ready_world([source_vm(1)])
    config = kubeconfig("https://10.0.0.1:6443")
    await add_provider(world.ports, ProviderSpec(name="cluster", type="kubernetes"), Secret(config))
    stored = world.ports.resources
    assert isinstance(stored, FakeResources)
    stored.put(ProviderRecord, "cluster", ProviderRecord(spec=ProviderSpec(name="cluster", type="kubernetes")))
    monkeypatch.setattr(providers, "migrations_using", lambda ports, name: ["m-1"])

    view = await update_provider(world.ports, "cluster", ProviderChange(), Secret(config + "\n"),
                                 secret_field="kubeconfig")  # fmt: skip
    assert (view.spec.url, view.spec.context, view.generation) == ("https://10.0.0.1:6443", "main", 2)
    with pytest.raises(ConflictError, match="its url cannot change until the migration ends"):
        await update_provider(world.ports, "cluster", ProviderChange(), Secret(kubeconfig("https://k9:6443")),
                              secret_field="kubeconfig")  # fmt: skip


class UnreadableCredentials(FakeCredentials):
    """A secret is stored that this planner cannot read (its key was changed), until one is put."""

    async def get(self, provider: str) -> Secret | None:
        if provider not in self.secrets:
            raise CredentialsUnreadableError(provider, "the store key does not match")
        return await super().get(provider)


async def test_a_stored_secret_that_cannot_be_read_is_replaced_by_a_new_one_but_kept_for_other_changes() -> None:
    world = ready_world([source_vm(1)])
    ports = dataclasses.replace(world.ports, credentials=UnreadableCredentials())
    with pytest.raises(CredentialsUnreadableError):
        await update_provider(ports, "vc", ProviderChange(username="admin"))
    view = await update_provider(ports, "vc", ProviderChange(), Secret("fresh"), secret_field="password")
    assert view.generation == 2
    assert ports.credentials.secrets["vc"] == Secret("fresh")  # type: ignore[attr-defined]
