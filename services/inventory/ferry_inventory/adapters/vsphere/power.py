"""Powering source VMs off and on: the vSphere side of ``PowerOffSourceVm`` and
``RestoreSourcePowerState``.

:class:`VspherePower` (the :class:`~ferry_inventory.domain.power.SourcePower` port) logs
in for one command and yields a :class:`VsphereVm` for the VM's managed object id
(``vm-42``). Each step is a blocking pyVmomi call run by :func:`blocking.call` on a thread
pool of its own (a guest shutdown may be waited on for minutes, which must not starve the
watchers' pool) and interrupted when the service stops. Waits are event-driven: a
:class:`PropertyWait` on the VM's ``runtime.powerState`` or on the power task's ``info.state``.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from pyVmomi import vim, vmodl

from ferry_inventory.adapters.vsphere import blocking
from ferry_inventory.adapters.vsphere.login import log_in
from ferry_inventory.adapters.vsphere.specs import paths_filter_spec, retrieve_options
from ferry_inventory.adapters.vsphere.waits import ObjectGoneError, PropertyWait
from ferry_inventory.domain.power import SourceVm, VmNotFoundError, VmPower
from ferry_shared.credentials import Secret
from ferry_shared.inventory import PowerState
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.calls import session_errors
from ferry_shared.vsphere.errors import NO_PERMISSION, ProviderError
from ferry_shared.vsphere.session import Session

T = TypeVar("T")
log = logging.getLogger(__name__)

TASK_TIMEOUT = "task_timeout"
"""A power task did not end within ``PowerSettings.task_timeout`` (retried later)."""

READ_PATHS = ("runtime.powerState", "guest.toolsRunningStatus")
TOOLS_RUNNING = "guestToolsRunning"
TASK_ENDED = ("success", "error")


@dataclass(frozen=True)
class PowerSettings:
    connect_timeout: float = 10.0  # TCP connect and TLS handshake of the probe
    call_timeout: float = 120.0  # any one SOAP call
    task_timeout: float = 600.0  # a power task still running after this is reported (and retried)
    max_wait_seconds: int = 10  # one long-poll of WaitForUpdatesEx; bounds how long stop may wait
    close_timeout: float = 10.0
    threads: int = 32  # concurrent blocking calls (each command holds one while it waits)


class VspherePower:
    """Opens a session per command; :meth:`close` interrupts every call in flight."""

    def __init__(self, settings: PowerSettings | None = None) -> None:
        self._settings = settings or PowerSettings()
        self._stop = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=self._settings.threads, thread_name_prefix="vsphere-power")

    @contextlib.asynccontextmanager
    async def vm(self, provider: ProviderSpec, password: Secret, vm_id: str) -> AsyncIterator[SourceVm]:
        settings = self._settings

        def open_session() -> Session:
            return log_in(
                provider, password, connect_timeout=settings.connect_timeout, call_timeout=settings.call_timeout
            )

        session = await blocking.call(self._stop, open_session, discard=Session.close, executor=self._executor)
        try:
            yield VsphereVm(session, vm_id, self._stop, settings, self._executor)
        finally:
            closing = asyncio.ensure_future(asyncio.to_thread(session.close))
            await asyncio.wait({closing}, timeout=settings.close_timeout)

    def close(self) -> None:
        """Stop: calls in flight end with ``StoppedError``, new ones are refused."""
        self._stop.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


class VsphereVm:
    """One VM in one session (see :class:`~ferry_inventory.domain.power.SourceVm`)."""

    def __init__(
        self, session: Session, vm_id: str, stop: asyncio.Event, settings: PowerSettings, executor: ThreadPoolExecutor
    ) -> None:
        self._session = session
        self._vm_id = vm_id
        self._vm = vim.VirtualMachine(vm_id, session.service._stub)  # type: ignore[no-untyped-call]
        self._stop = stop
        self._settings = settings
        self._executor = executor
        self._waiting: PropertyWait | None = None

    async def read(self) -> VmPower:
        return await self._call(self._read)

    async def shutdown_guest(self) -> bool:
        return await self._call(self._shutdown_guest)

    async def wait_powered_off(self, seconds: float) -> bool:
        return await self._call(lambda: self._wait_powered_off(seconds))

    async def power_off(self) -> None:
        await self._call(lambda: self._run_task(self._vm.PowerOffVM_Task, "power-off"))

    async def power_on(self) -> None:
        await self._call(lambda: self._run_task(self._vm.PowerOnVM_Task, "power-on"))

    async def _call(self, function: Callable[[], T]) -> T:
        return await blocking.call(
            self._stop, lambda: self._guarded(function), interrupt=self._interrupt, executor=self._executor
        )

    def _guarded(self, function: Callable[[], T]) -> T:
        """``function()`` with vSphere faults turned into the errors the handlers map."""
        endpoint = self._session.endpoint
        with session_errors(endpoint):
            try:
                return function()
            except vmodl.fault.ManagedObjectNotFound as error:
                raise VmNotFoundError(self._vm_id) from error
            except vim.fault.NoPermission as error:
                raise ProviderError(
                    NO_PERMISSION,
                    f"the user may not power VM {self._vm_id} off or on at {endpoint} (missing privilege "
                    f"{error.privilegeId}); give it VirtualMachine.Interact.PowerOff and .PowerOn on the VM",
                ) from error

    def _interrupt(self) -> None:
        waiting = self._waiting
        if waiting is not None:
            waiting.cancel()

    def _read(self) -> VmPower:
        collector = self._session.content.propertyCollector
        result = collector.RetrievePropertiesEx([paths_filter_spec(self._vm, READ_PATHS)], retrieve_options(1))
        if result is None or not result.objects:
            raise VmNotFoundError(self._vm_id)
        found = result.objects[0]
        if any(isinstance(missing.fault, vmodl.fault.ManagedObjectNotFound) for missing in found.missingSet):
            raise VmNotFoundError(self._vm_id)
        props = {prop.name: prop.val for prop in found.propSet}
        return VmPower(
            power_state=str(props.get("runtime.powerState", "")),
            tools_running=props.get("guest.toolsRunningStatus") == TOOLS_RUNNING,
        )

    def _shutdown_guest(self) -> bool:
        try:
            self._vm.ShutdownGuest()
        except (vim.fault.ToolsUnavailable, vim.fault.InvalidState) as error:  # InvalidPowerState is one too
            log.info("the guest of VM %s cannot be asked to shut down (%s)", self._vm_id, type(error).__name__)
            return False
        return True

    def _wait_powered_off(self, timeout: float) -> bool:
        try:
            return self._wait(self._vm, "runtime.powerState", lambda state: state == PowerState.OFF, timeout)
        except ObjectGoneError as error:
            raise VmNotFoundError(self._vm_id) from error

    def _run_task(self, start: Callable[[], vim.Task], what: str) -> None:
        """Start a power task and wait for its end; the VM already being in the wanted state is success."""
        try:
            task = start()
        except vim.fault.InvalidPowerState:
            return
        timeout = self._settings.task_timeout
        if not self._wait(task, "info.state", lambda state: state in TASK_ENDED, timeout):
            raise ProviderError(
                TASK_TIMEOUT,
                f"the {what} task of VM {self._vm_id} on {self._session.endpoint} did not end within {timeout:.0f}s",
            )
        error = task.info.error
        if error is not None and not isinstance(error, vim.fault.InvalidPowerState):
            raise error

    def _wait(
        self, obj: vim.ManagedEntity | vim.Task, path: str, accept: Callable[[object], bool], timeout: float
    ) -> bool:
        with PropertyWait(self._session.content, obj, path, max_wait_seconds=self._settings.max_wait_seconds) as wait:
            self._waiting = wait
            try:
                return wait.until(accept, timeout, self._stop.is_set)
            finally:
                self._waiting = None
