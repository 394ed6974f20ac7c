"""Waiting for one property of one managed object to reach a value, on vCenter's change feed.

A :class:`PropertyWait` creates a PropertyCollector of its own with one filter over one
property of one object (a VM's ``runtime.powerState``, a task's ``info.state``) and
long-polls ``WaitForUpdatesEx``: the first answer is the current value, each later one
a change. Every long-poll is at most ``max_wait_seconds`` so a caller's ``stopped`` is
looked at regularly; :meth:`PropertyWait.cancel` ends a long-poll at once from another
thread. Blocking; runs in a worker thread.
"""

import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import ManagedObject

from ferry_inventory.adapters.vsphere.own_collector import OwnCollector
from ferry_inventory.adapters.vsphere.specs import paths_filter_spec, wait_options
from ferry_shared.vsphere.errors import StoppedError


class ObjectGoneError(Exception):
    """The watched object was deleted while we waited."""


class PropertyWait(OwnCollector):
    """Waits on one property of one object; use as a context manager (it destroys its collector)."""

    def __init__(
        self, content: vim.ServiceInstanceContent, obj: ManagedObject, path: str, *, max_wait_seconds: int
    ) -> None:
        self._path = path
        self._max_wait_seconds = max_wait_seconds
        self._version = ""
        self._cancelled = False
        self.value: object = None
        super().__init__(content, paths_filter_spec(obj, (path,)))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def until(self, accept: Callable[[object], bool], timeout: float, stopped: Callable[[], bool]) -> bool:
        """Wait until ``accept(value)``; False when ``timeout`` seconds pass first. Raises
        :class:`StoppedError` when ``stopped()`` or :meth:`cancel` ends the wait."""
        deadline = time.monotonic() + timeout
        while True:
            if stopped() or self._cancelled:
                raise StoppedError
            remaining = deadline - time.monotonic()
            seconds = max(0, min(self._max_wait_seconds, math.ceil(remaining)))
            try:
                result = self._collector.WaitForUpdatesEx(self._version, wait_options(seconds))
            except vmodl.fault.RequestCanceled as error:
                raise StoppedError from error
            if result is not None:
                self._version = result.version
                self._take(result)
            if accept(self.value):
                return True
            if time.monotonic() >= deadline:
                return False

    def _take(self, result: vmodl.query.PropertyCollector.UpdateSet) -> None:
        for filter_update in result.filterSet:
            for update in filter_update.objectSet:
                if update.kind == "leave":
                    raise ObjectGoneError
                for change in update.changeSet:
                    if change.name == self._path:
                        self.value = None if change.op == "remove" else change.val

    def cancel(self) -> None:
        """End a waiting :meth:`until` (from another thread); never raises."""
        self._cancelled = True
        super().cancel()
