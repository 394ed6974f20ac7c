"""Use cases of providers: add, update, delete, show. A provider's secret is stored apart
from its settings; the inventory service is told to connect (again) or disconnect it."""

from pathlib import Path

import msgspec

from ferry_planner.domain.migrations import MigrationPhase
from ferry_planner.domain.providers import (
    CHANGEABLE,
    ProviderChange,
    ProviderRecord,
    effective_status,
    moved,
    trust_changes,
)
from ferry_planner.domain.views import ProviderView
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import AlreadyExistsError, ConflictError, InvalidError, check_name
from ferry_planner.handlers.lookups import require, require_stored
from ferry_shared.credentials import CredentialsUnreadableError, Secret
from ferry_shared.errors import TemporaryError
from ferry_shared.ids import message_id
from ferry_shared.kubernetes.failures import TargetError
from ferry_shared.kubernetes.kubeconfig import endpoint_of
from ferry_shared.local_roots import outside_roots_message, root_of
from ferry_shared.providers import ConnectProvider, DisconnectProvider, ProviderSpec


async def add_provider(ports: PlannerPorts, spec: ProviderSpec, secret: Secret | None) -> ProviderView:
    check_name("provider", spec.name)
    _check_provider_spec(spec, secret is not None, ports.local_target_roots)
    spec = with_kubeconfig_endpoint(spec, secret)
    record = ProviderRecord(spec=spec, generation=1)
    revision = await ports.resources.create(ProviderRecord, spec.name, record)
    if revision is None:
        raise AlreadyExistsError("provider", spec.name)
    if secret is not None:
        await ports.credentials.put(spec.name, secret)
    # The record's revision tells this provider apart from an earlier one of the same name.
    await connect(ports, record, revision)
    changed(ports, "provider", spec.name)
    return await provider(ports, spec.name)


async def update_provider(
    ports: PlannerPorts,
    name: str,
    change: ProviderChange,
    secret: Secret | None = None,
    *,
    secret_field: str = "",
    type_: str | None = None,
) -> ProviderView:
    """Change a provider's settings or secret, then have the inventory connect it again (a new
    generation) and every plan validated again. A vsphere provider's URL or certificate trust
    changes only with its password given again (422), so the stored password never goes to a
    server it was not given for. While a migration uses the provider only its credentials and
    certificate trust may change, not where it is (409 ``provider_in_use``).
    ``secret_field`` names what ``secret`` was given as (``password``, ``kubeconfig``)."""
    async with ports.guards.provider[name]:
        return await _update_provider(ports, name, change, secret, secret_field, type_)


async def _update_provider(
    ports: PlannerPorts, name: str, change: ProviderChange, secret: Secret | None, secret_field: str, type_: str | None
) -> ProviderView:
    revision = await require_stored(ports, ProviderRecord, "provider", name)
    record = await require(ports, ProviderRecord, "provider", name)
    _check_change(record.spec, change, secret_field if secret is not None else None, type_)
    if secret is not None and not secret.reveal().strip():
        raise InvalidError(f"the {secret_field or 'secret'} is empty; give the provider's {secret_field or 'secret'}")
    previous_secret = await _stored_secret(ports, name, replaced=secret is not None)
    stored_secret = secret or previous_secret
    before = record.spec
    if before.type == "kubernetes" and not before.in_cluster and not before.url:
        before = with_kubeconfig_endpoint(before, previous_secret)  # a record stored before endpoints were kept
    after = change.applied_to(before)
    _check_provider_spec(after, stored_secret is not None, ports.local_target_roots)
    if after.type == "vsphere" and secret is None and (retrusted := trust_changes(before, after)):
        raise InvalidError(
            f"give the password again with a new {', '.join(retrusted)} (ferry provider update {name} "
            "--password …): Ferry sends a stored password only to the vCenter it was given for"
        )
    if after.type == "kubernetes" and (
        secret is not None or change.context is not None or change.in_cluster is not None
    ):
        after = with_kubeconfig_endpoint(after, stored_secret)
    if (where := moved(before, after)) and (users := migrations_using(ports, name)):
        raise ConflictError(
            "provider_in_use",
            f"provider '{name}' is used by migration '{users[0]}': its {', '.join(where)} cannot change until "
            "the migration ends (its password, user name and certificate trust can); cancel it or wait for it to end",
        )
    if secret is not None:
        await ports.credentials.put(name, secret)  # first: the new generation always connects with it
    updated = ProviderRecord(spec=after, generation=record.generation + 1)
    new_revision = await ports.resources.replace(ProviderRecord, name, updated, revision=revision)
    if new_revision is None:
        if secret is not None and previous_secret is not None:
            await ports.credentials.put(name, previous_secret)  # the record that won keeps its own secret
        raise TemporaryError(
            "provider_changed_elsewhere", f"provider '{name}' was changed meanwhile; read it again and retry", delay=0.5
        )
    await connect(ports, updated, new_revision)
    changed(ports, "provider", name)
    return await provider(ports, name)


async def _stored_secret(ports: PlannerPorts, name: str, *, replaced: bool) -> Secret | None:
    """The provider's stored secret; one that cannot be read is no obstacle to replacing it."""
    try:
        return await ports.credentials.get(name)
    except CredentialsUnreadableError:
        if replaced:
            return None
        raise


async def connect(ports: PlannerPorts, record: ProviderRecord, revision: int) -> None:
    """Tell the inventory to connect ``record``'s generation (once per stored revision)."""
    name = record.spec.name
    await ports.publisher.publish(
        ConnectProvider(
            message_id=message_id("connect", name, str(revision)), provider=record.spec, generation=record.generation
        )
    )


async def reconnect_lagging_providers(ports: PlannerPorts) -> None:
    """Tell the inventory again to connect each provider it has not reported on at its
    stored generation: a planner that stopped between storing a change and telling the
    inventory leaves nothing behind (the inventory ignores a generation it runs)."""
    for record in await ports.resources.list(ProviderRecord):
        status = ports.inventory.status(record.spec.name)
        if status is not None and status.generation >= record.generation:
            continue
        if revision := await ports.resources.revision(ProviderRecord, record.spec.name):
            await connect(ports, record, revision)


def _check_change(before: ProviderSpec, change: ProviderChange, secret_field: str | None, type_: str | None) -> None:
    if type_ is not None and type_ != before.type:
        raise InvalidError(
            f"a provider's type cannot be changed (provider '{before.name}' is {before.type}); "
            "delete it and add a new one"
        )
    given = set(change.given()) | ({secret_field} if secret_field else set())
    if not given:
        raise InvalidError(f"nothing to change: give one of {', '.join(sorted(CHANGEABLE[before.type]))}")
    if foreign := sorted(given - CHANGEABLE[before.type]):
        hint = "; its URL is its kubeconfig's server" if before.type == "kubernetes" and "url" in foreign else ""
        raise InvalidError(
            f"a {before.type} provider has no {', '.join(foreign)} to change "
            f"(it has {', '.join(sorted(CHANGEABLE[before.type]))}){hint}"
        )


def with_kubeconfig_endpoint(spec: ProviderSpec, kubeconfig: Secret | None) -> ProviderSpec:
    """A kubernetes provider with its kubeconfig's API server as ``url`` and the context it
    uses as ``context`` (what it is listed with; never a credential of the kubeconfig)."""
    if spec.type != "kubernetes":
        return spec
    if spec.in_cluster or kubeconfig is None:
        return msgspec.structs.replace(spec, url="")
    try:
        server, context = endpoint_of(kubeconfig, spec.context)
    except TargetError as error:
        raise InvalidError(error.message) from None
    return msgspec.structs.replace(spec, url=server, context=context)


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


def _check_provider_spec(spec: ProviderSpec, has_secret: bool, local_roots: tuple[Path, ...]) -> None:
    if spec.type == "vsphere":
        if not spec.url or not spec.username:
            raise InvalidError("a vsphere provider needs url and username")
        if not has_secret:
            raise InvalidError("a vsphere provider needs a password")
        if not (spec.ca_bundle or spec.thumbprint or spec.insecure):
            raise InvalidError("say how to trust the vCenter's certificate: ca_bundle, thumbprint, or insecure=true")
    elif spec.type == "kubernetes":
        if not has_secret and not spec.in_cluster:
            raise InvalidError("a kubernetes provider needs a kubeconfig, or in_cluster=true")
    elif spec.type == "local":
        if not spec.path:
            raise InvalidError("a local provider needs a path")
        if root_of(spec.path, local_roots) is None:
            raise InvalidError(outside_roots_message(spec.path, local_roots))
