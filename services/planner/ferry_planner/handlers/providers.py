"""Use cases of providers: add, delete, show. A provider's secret is stored apart from its
settings; the inventory service is told to connect or disconnect it."""

from pathlib import Path

from ferry_planner.domain.migrations import MigrationPhase
from ferry_planner.domain.providers import ProviderRecord, effective_status
from ferry_planner.domain.views import ProviderView
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import AlreadyExistsError, ConflictError, InvalidError, check_name
from ferry_planner.handlers.lookups import require, require_stored
from ferry_shared.credentials import Secret
from ferry_shared.ids import message_id
from ferry_shared.local_roots import outside_roots_message, root_of
from ferry_shared.providers import ConnectProvider, DisconnectProvider, ProviderSpec


async def add_provider(ports: PlannerPorts, spec: ProviderSpec, secret: Secret | None) -> ProviderView:
    check_name("provider", spec.name)
    _check_provider_spec(spec, secret, ports.local_target_roots)
    record = ProviderRecord(spec=spec, generation=1)
    revision = await ports.resources.create(ProviderRecord, spec.name, record)
    if revision is None:
        raise AlreadyExistsError("provider", spec.name)
    if secret is not None:
        await ports.credentials.put(spec.name, secret)
    # The record's revision tells this provider apart from an earlier one of the same name.
    await ports.publisher.publish(
        ConnectProvider(
            message_id=message_id("connect", spec.name, str(revision)), provider=spec, generation=record.generation
        )
    )
    changed(ports, "provider", spec.name)
    return await provider(ports, spec.name)


async def delete_provider(ports: PlannerPorts, name: str) -> None:
    """Delete a provider no migration needs any more (409 naming the one that does)."""
    revision = await require_stored(ports, ProviderRecord, "provider", name)
    if users := migrations_using(ports, name):
        raise ConflictError(
            "provider_in_use",
            f"provider '{name}' is used by migration '{users[0]}', which still needs its credentials "
            "(to copy, or to power a source VM back on); cancel it or wait for it to end, then delete the provider",
        )
    await ports.resources.delete(ProviderRecord, name)
    await ports.credentials.delete(name)
    await ports.publisher.publish(
        DisconnectProvider(message_id=message_id("disconnect", name, str(revision)), provider_name=name)
    )
    changed(ports, "provider", name)


async def provider(ports: PlannerPorts, name: str) -> ProviderView:
    return await _view(ports, await require(ports, ProviderRecord, "provider", name))


async def providers(ports: PlannerPorts) -> list[ProviderView]:
    return [await _view(ports, record) for record in await ports.resources.list(ProviderRecord)]


async def _view(ports: PlannerPorts, record: ProviderRecord) -> ProviderView:
    return ProviderView(
        spec=record.spec,
        generation=record.generation,
        has_credentials=await ports.credentials.get(record.spec.name) is not None,
        status=effective_status(record, ports.inventory.status(record.spec.name)),
    )


def migrations_using(ports: PlannerPorts, provider: str) -> list[str]:
    """Migrations that still need ``provider``: running, or waiting to hear that a source was powered back on."""
    return sorted(
        migration.name
        for migration in ports.migrations.all()
        if provider in (migration.source.name, migration.target.name)
        and (migration.phase is MigrationPhase.RUNNING or any(vm.restore_pending for vm in migration.vms))
    )


def changed(ports: PlannerPorts, kind: str, name: str) -> None:
    """Announce a change of a provider, map or plan, and have every plan validated again."""
    ports.changes.publish({"kind": kind, "name": name})
    ports.revalidation.request()


def _check_provider_spec(spec: ProviderSpec, secret: Secret | None, local_roots: tuple[Path, ...]) -> None:
    if spec.type == "vsphere":
        if not spec.url or not spec.username:
            raise InvalidError("a vsphere provider needs url and username")
        if secret is None:
            raise InvalidError("a vsphere provider needs a password")
        if not (spec.ca_bundle or spec.thumbprint or spec.insecure):
            raise InvalidError("say how to trust the vCenter's certificate: ca_bundle, thumbprint, or insecure=true")
    elif spec.type == "kubernetes":
        if secret is None and not spec.in_cluster:
            raise InvalidError("a kubernetes provider needs a kubeconfig, or in_cluster=true")
    elif spec.type == "local":
        if not spec.path:
            raise InvalidError("a local provider needs a path")
        if root_of(spec.path, local_roots) is None:
            raise InvalidError(outside_roots_message(spec.path, local_roots))
