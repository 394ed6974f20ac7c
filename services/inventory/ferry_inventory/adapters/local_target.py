"""The :class:`~ferry_inventory.domain.ports.Watcher` of a local target: a directory that
receives the converted disks and VM definitions instead of a cluster. Made by the
inventory service's bootstrap for providers of type ``local``.

It has no inventory: it checks once that the directory exists (creating it if needed)
and is writable, reports ready with no counts or an error saying what to fix, retries
the check with capped back-off while it fails, and then waits for stop.
"""

import asyncio
import logging
import tempfile
from pathlib import Path

from ferry_inventory.domain.ports import InventorySink, StatusReporter
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus
from ferry_shared.retry import Backoff, pause

log = logging.getLogger(__name__)

PATH_NOT_DIRECTORY = "path_not_directory"
PATH_NOT_WRITABLE = "path_not_writable"
FIRST_RETRY = 1.0
MAX_RETRY = 60.0


def _error(reason: str, message: str) -> ProviderStatus:
    return ProviderStatus(phase=ProviderPhase.ERROR, reason=reason, message=message)


def check_directory(path: str) -> ProviderStatus:
    """Ready, or the error that keeps ``path`` from being a target directory."""
    if not path:
        return _error(PATH_NOT_DIRECTORY, "the local target has no path; set it to a writable directory")
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        return _error(PATH_NOT_DIRECTORY, f"{path} is not a directory; point the local target at a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except NotADirectoryError:
        return _error(PATH_NOT_DIRECTORY, f"{path} cannot be a directory: part of its path is a file")
    except OSError as error:
        return _error(PATH_NOT_WRITABLE, f"{path} does not exist and cannot be created ({error.strerror})")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".ferry-write-check-"):
            pass
    except OSError as error:
        why = error.strerror
        return _error(PATH_NOT_WRITABLE, f"Ferry cannot write into {path} ({why}); make it writable for it")
    return ProviderStatus(phase=ProviderPhase.READY, message=f"writing into {directory.resolve()}")


class LocalTargetWatcher:
    """Reports whether a local target directory can be written to."""

    def __init__(self, spec: ProviderSpec, *, retry_initial: float = FIRST_RETRY, retry_max: float = MAX_RETRY) -> None:
        """A failed check is retried after ``retry_initial`` seconds, doubled after each
        failure up to ``retry_max``."""
        self._spec = spec
        self._retry = (retry_initial, retry_max)

    def __repr__(self) -> str:
        return f"LocalTargetWatcher({self._spec.name!r})"

    async def run(self, sink: InventorySink, status: StatusReporter, stop: asyncio.Event) -> None:
        backoff = Backoff(*self._retry)
        while not stop.is_set():
            checked = await asyncio.to_thread(check_directory, self._spec.path)
            if checked.phase == ProviderPhase.READY:
                await sink.replace_all([])
                await status.report(checked)
                await stop.wait()
                return
            delay = backoff.next()
            log.warning("local target %s: %s; again in %.0fs", self._spec.name, checked.message, delay)
            await status.report(checked)
            await pause(delay, stop=stop)
