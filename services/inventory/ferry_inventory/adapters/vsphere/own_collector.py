"""A PropertyCollector of our own (``CreatePropertyCollector``) with one filter, so the
filter cannot clash with anyone else's and ``WaitForUpdatesEx`` on it sees only its
objects. The base of the change feed (:mod:`.feed`) and of property waits (:mod:`.waits`).
"""

import http.client
import logging

from pyVmomi import vim, vmodl

log = logging.getLogger(__name__)

CLEANUP_FAILURES = (vmodl.MethodFault, OSError, http.client.HTTPException)
"""What cancelling or destroying a collector may raise; logged, never passed on."""


class OwnCollector:
    """A collector and its filter over ``spec``; call :meth:`close` when done."""

    def __init__(self, content: vim.ServiceInstanceContent, spec: vmodl.query.PropertyCollector.FilterSpec) -> None:
        self._collector = content.propertyCollector.CreatePropertyCollector()
        try:
            self._collector.CreateFilter(spec, partialUpdates=False)
        except BaseException:
            self.close()
            raise

    def cancel(self) -> None:
        """End a waiting ``WaitForUpdatesEx`` at once (from another thread); never raises."""
        try:
            self._collector.CancelWaitForUpdates()
        except CLEANUP_FAILURES as error:
            log.debug("CancelWaitForUpdates failed: %s", type(error).__name__)

    def close(self) -> None:
        """Destroy the collector and with it the filter; never raises."""
        try:
            self._collector.Destroy()
        except CLEANUP_FAILURES as error:
            log.debug("destroying the property collector failed: %s", type(error).__name__)
