"""vCenter's change feed over the inventory: ``WaitForUpdatesEx`` on a filter of its own.

A :class:`ChangeFeed` creates a separate PropertyCollector (``CreatePropertyCollector``,
so its filter cannot clash with anyone's), one filter over the same container view and
properties as the full load, and then long-polls the server's change feed: each
:meth:`ChangeFeed.next` call waits up to ``max_wait_seconds`` for changes and returns
them (pages of a truncated update set are collected into one batch). The first call
returns the current state of every object, which the mirror compares with the load.
"""

from collections.abc import Callable

from pyVmomi import vim, vmodl

from ferry_inventory.adapters.vsphere.own_collector import OwnCollector
from ferry_inventory.adapters.vsphere.specs import view_filter_spec, wait_options

ObjectUpdate = vmodl.query.PropertyCollector.ObjectUpdate


class ChangeFeed(OwnCollector):
    """One PropertyCollector and filter (:meth:`cancel` interrupts a waiting :meth:`next`);
    call :meth:`close` when done."""

    def __init__(
        self, content: vim.ServiceInstanceContent, view: vim.view.ContainerView, max_wait_seconds: int
    ) -> None:
        super().__init__(content, view_filter_spec(view))
        self._options = wait_options(max_wait_seconds)
        self._version = ""

    def next(self, stopped: Callable[[], bool]) -> list[ObjectUpdate]:
        """The changes since the last call (empty when none came within the wait, or
        when :meth:`cancel` interrupted the wait). Between the pages of a truncated
        update set it checks ``stopped`` and gives up (the updates are then dropped)."""
        updates: list[ObjectUpdate] = []
        while not stopped():
            try:
                result = self._collector.WaitForUpdatesEx(self._version, self._options)
            except vmodl.fault.RequestCanceled:
                return updates
            if result is None:
                return updates
            self._version = result.version
            for filter_update in result.filterSet:
                updates.extend(filter_update.objectSet)
            if not result.truncated:
                return updates
        return []
