"""Use cases of the inventory service: connect and disconnect providers; power source VMs
off before a migration copies them, and back on when it fails or is cancelled.

Powering off (``PowerOffSourceVm``): record the VM's power state, then, when it is on,
ask the guest to shut down if VMware Tools run (else power it off hard), wait for
``poweredOff`` and power it off hard when the guest has not finished within
``shutdown_timeout_seconds``. A suspended VM is left suspended: it runs nothing, so its
disks do not change, and powering it off would throw away its memory state. Each step
publishes its event with a ``step_id`` message id, so a redelivered command re-publishes
the same (deduplicated) events. ``RestoreSourcePowerState`` powers the VM on only when the
recorded state was ``poweredOn`` and the VM is now off.

Each handler takes its dependencies as keyword parameters, typed by the ports of
:mod:`.domain.ports` and :mod:`.domain.power`; :func:`handler_table` binds them for the
bootstrap, and unit tests pass hand-written fakes.
"""

import asyncio
import contextlib
import functools
import logging
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Literal

from ferry_inventory.domain.ports import Connections, Credentials, EventPublisher, Watchers
from ferry_inventory.domain.power import SourcePower, SourceVm, VmNotFoundError, VmPower
from ferry_shared.bus.consumer import HandlerTable
from ferry_shared.bus.delivery import Delivery
from ferry_shared.credentials import Secret
from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.inventory import PowerState
from ferry_shared.migrations import (
    PowerOffSourceVm,
    RestoreSourcePowerState,
    SourcePowerOffRequested,
    SourcePowerStateRecorded,
    SourcePowerStateRestored,
    SourceVmPoweredOff,
    StepFields,
    step_fields,
)
from ferry_shared.providers import ConnectProvider, DisconnectProvider, ProviderConnection, ProviderSpec
from ferry_shared.vsphere.errors import (
    CERTIFICATE_UNTRUSTED,
    INVALID_LOGIN,
    INVALID_SETTINGS,
    NO_PERMISSION,
    NOT_VCENTER,
    THUMBPRINT_MISMATCH,
    ProviderError,
    SessionLostError,
    StoppedError,
)

log = logging.getLogger(__name__)

NEEDS_SECRET = {"vsphere"}

PERMANENT_REASONS = frozenset(
    {INVALID_SETTINGS, INVALID_LOGIN, CERTIFICATE_UNTRUSTED, THUMBPRINT_MISMATCH, NOT_VCENTER, NO_PERMISSION}
)
"""Provider failures that retrying cannot mend; the others (unreachable, connection lost,
TLS failure, API faults) are retried."""
RETRY_DELAY = 10.0
PowerOffMethod = Literal["guest_shutdown", "power_off"]


def _missing_credentials(provider: str) -> PermanentError:
    return PermanentError(
        "credentials_missing",
        f"no credentials are stored for provider '{provider}'; set them with `ferry provider update {provider}`",
    )


async def connect_provider(
    command: ConnectProvider,
    delivery: Delivery,
    *,
    watchers: Watchers,
    connections: Connections,
    credentials: Credentials,
) -> None:
    """Start (or restart with new settings) the watcher of one provider."""
    async with watchers.lock(command.provider.name):
        await _connect(command, watchers=watchers, connections=connections, credentials=credentials)


async def _connect(
    command: ConnectProvider,
    *,
    watchers: Watchers,
    connections: Connections,
    credentials: Credentials,
) -> None:
    spec = command.provider
    current = watchers.generation(spec.name)
    if current is not None and current >= command.generation:
        log.info("provider %s generation %d already connected", spec.name, current)
        return
    secret = await credentials.get(spec.name)
    if secret is None and spec.type in NEEDS_SECRET:
        raise _missing_credentials(spec.name)
    await connections.put(ProviderConnection(provider=spec, generation=command.generation))
    await watchers.start(spec, secret, command.generation)


async def disconnect_provider(
    command: DisconnectProvider,
    delivery: Delivery,
    *,
    watchers: Watchers,
    connections: Connections,
) -> None:
    """Stop watching a provider and delete its inventory."""
    async with watchers.lock(command.provider_name):
        await connections.delete(command.provider_name)
        await watchers.forget(command.provider_name)


class VmLocks:
    """One lock per source VM, so a restore waits for a power-off of the same VM to end."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()

    def of(self, provider: str, vm_id: str) -> asyncio.Lock:
        lock = self._locks.get((provider, vm_id))
        if lock is None:
            lock = self._locks[provider, vm_id] = asyncio.Lock()
        return lock


async def _password(spec: ProviderSpec, credentials: Credentials) -> Secret:
    if spec.type != "vsphere":
        raise PermanentError(
            "unsupported_provider", f"provider '{spec.name}' is a {spec.type} provider; source VMs must be on vSphere"
        )
    secret = await credentials.get(spec.name)
    if secret is None:
        raise _missing_credentials(spec.name)
    return secret


@contextlib.contextmanager
def _power_failures(spec: ProviderSpec, vm_id: str) -> Iterator[None]:
    """The adapter's failures as permanent or temporary handler errors."""
    try:
        yield
    except VmNotFoundError as error:
        raise PermanentError(
            "vm_not_found", f"source VM {vm_id} no longer exists on {spec.name}; refresh the plan"
        ) from error
    except ProviderError as error:
        if error.reason in PERMANENT_REASONS:
            raise PermanentError(error.reason, error.message) from error
        raise TemporaryError(error.reason, error.message, delay=RETRY_DELAY) from error
    except SessionLostError as error:
        raise TemporaryError("session_lost", f"{error}; trying again", delay=RETRY_DELAY) from error
    except StoppedError as error:
        message = "the inventory service is stopping; the command is retried"
        raise TemporaryError("stopping", message, delay=0) from error


@contextlib.asynccontextmanager
async def _source_vm(
    command: PowerOffSourceVm | RestoreSourcePowerState,
    delivery: Delivery,
    *,
    power: SourcePower,
    credentials: Credentials,
    locks: VmLocks,
) -> AsyncIterator[SourceVm]:
    """The command's VM in a logged-in session, holding the message's lease and the VM's
    lock; the adapter's failures inside become handler errors."""
    spec = command.source
    async with delivery.lease(), locks.of(spec.name, command.vm_id):
        password = await _password(spec, credentials)
        with _power_failures(spec, command.vm_id):
            async with power.vm(spec, password, command.vm_id) as vm:
                yield vm


async def power_off_source_vm(
    command: PowerOffSourceVm,
    delivery: Delivery,
    *,
    power: SourcePower,
    credentials: Credentials,
    publisher: EventPublisher,
    locks: VmLocks,
) -> None:
    """Record the VM's power state and power it off (see the module docstring)."""
    async with _source_vm(command, delivery, power=power, credentials=credentials, locks=locks) as vm:
        state = await vm.read()
        await publisher.publish(
            SourcePowerStateRecorded(**_step(command, "power_state_recorded"), power_state=state.power_state)
        )
        if state.power_state == PowerState.ON:
            await _power_off(command, vm, state, publisher)
        else:
            log.info("source VM %s of migration %s is %s", command.vm_id, command.migration, state.power_state)
        await publisher.publish(SourceVmPoweredOff(**_step(command, "powered_off")))


async def _power_off(command: PowerOffSourceVm, vm: SourceVm, state: VmPower, publisher: EventPublisher) -> None:
    """Guest shutdown when the tools run, a hard power-off when not or when the guest is too slow."""
    if state.tools_running and await vm.shutdown_guest():
        await _requested(command, "guest_shutdown", publisher)
        if await vm.wait_powered_off(command.shutdown_timeout_seconds):
            log.info("source VM %s shut down by its guest", command.vm_id)
            return
        log.warning(
            "the guest of source VM %s did not shut down within %.0fs; powering it off",
            command.vm_id,
            command.shutdown_timeout_seconds,
        )
    await _requested(command, "power_off", publisher)
    await vm.power_off()
    log.info("source VM %s powered off", command.vm_id)


async def _requested(command: PowerOffSourceVm, method: PowerOffMethod, publisher: EventPublisher) -> None:
    await publisher.publish(SourcePowerOffRequested(**_step(command, "power_off_requested", method), method=method))


async def restore_source_power_state(
    command: RestoreSourcePowerState,
    delivery: Delivery,
    *,
    power: SourcePower,
    credentials: Credentials,
    publisher: EventPublisher,
    locks: VmLocks,
) -> None:
    """Power the VM back on when it was on before the migration and is off now."""
    async with _source_vm(command, delivery, power=power, credentials=credentials, locks=locks) as vm:
        now = (await vm.read()).power_state
        if command.power_state == PowerState.ON and now == PowerState.OFF:
            await vm.power_on()
            now = PowerState.ON
            log.info("source VM %s of migration %s powered on again", command.vm_id, command.migration)
        await publisher.publish(SourcePowerStateRestored(**_step(command, "power_state_restored"), power_state=now))


def _step(command: PowerOffSourceVm | RestoreSourcePowerState, step: str, *parts: object) -> StepFields:
    """The addressing fields of an event about ``command``'s VM (its id derived from ``step``)."""
    return step_fields(command.migration, command.vm_id, step, *parts)


def handler_table(
    *,
    watchers: Watchers,
    connections: Connections,
    credentials: Credentials,
    power: SourcePower,
    publisher: EventPublisher,
) -> HandlerTable:
    """Command type → handler, with dependencies bound."""
    locks = VmLocks()
    return {
        ConnectProvider: functools.partial(
            connect_provider, watchers=watchers, connections=connections, credentials=credentials
        ),
        DisconnectProvider: functools.partial(disconnect_provider, watchers=watchers, connections=connections),
        PowerOffSourceVm: functools.partial(
            power_off_source_vm, power=power, credentials=credentials, publisher=publisher, locks=locks
        ),
        RestoreSourcePowerState: functools.partial(
            restore_source_power_state, power=power, credentials=credentials, publisher=publisher, locks=locks
        ),
    }
