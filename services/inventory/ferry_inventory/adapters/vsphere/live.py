"""One logged-in session's inventory: the full load, then the change feed.

:class:`LiveInventory` ties a :class:`Session` to its container view, its change feed
and the :class:`InventoryMirror`. All methods block (they call vCenter) and run in a
worker thread, one at a time, except :meth:`LiveInventory.cancel`, which may be called
from another thread to interrupt :meth:`LiveInventory.next_changes`.
"""

import http.client
import logging
from collections.abc import Callable

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import ManagedObject

from ferry_inventory.adapters.vsphere.cache import ObjectState
from ferry_inventory.adapters.vsphere.collector import create_view, load_all, load_one
from ferry_inventory.adapters.vsphere.feed import ChangeFeed
from ferry_inventory.adapters.vsphere.mirror import Changes, InventoryMirror
from ferry_inventory.domain.ports import KindAndRecord
from ferry_shared.vsphere.calls import session_errors
from ferry_shared.vsphere.session import Session

log = logging.getLogger(__name__)


class LiveInventory:
    def __init__(self, session: Session, *, batch_size: int, max_wait_seconds: int) -> None:
        self.session = session
        self.mirror = InventoryMirror()
        self._batch_size = batch_size
        self._max_wait_seconds = max_wait_seconds
        self._view: vim.view.ContainerView | None = None
        self._feed: ChangeFeed | None = None

    def load(self, stopped: Callable[[], bool]) -> list[KindAndRecord]:
        """Read everything; returns every record."""
        content = self.session.content
        with session_errors(self.session.endpoint):
            self._view = create_view(content)
            states = load_all(content, self._view, self._batch_size, stopped)
        return self.mirror.replace(states)

    def follow(self) -> None:
        """Start the change feed over the loaded view."""
        if self._view is None:
            raise RuntimeError("follow() before load()")
        with session_errors(self.session.endpoint):
            self._feed = ChangeFeed(self.session.content, self._view, self._max_wait_seconds)

    def next_changes(self, stopped: Callable[[], bool]) -> Changes:
        """Wait for the next changes and turn them into record changes."""
        if self._feed is None:
            raise RuntimeError("next_changes() before follow()")
        with session_errors(self.session.endpoint):
            updates = self._feed.next(stopped)
            return self.mirror.apply(updates, self._refetch) if updates else Changes()

    def _refetch(self, obj: ManagedObject) -> ObjectState | None:
        return load_one(self.session.content, obj)

    def cancel(self) -> None:
        if self._feed is not None:
            self._feed.cancel()

    def close(self) -> None:
        """Drop the feed and view and log out; never raises."""
        if self._feed is not None:
            self._feed.close()
        if self._view is not None:
            try:
                self._view.Destroy()
            except (vmodl.MethodFault, OSError, http.client.HTTPException) as error:
                log.debug("destroying the container view failed: %s", type(error).__name__)
        self.session.close()
