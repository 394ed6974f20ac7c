"""The :class:`~ferry_inventory.domain.ports.Watcher` of a local target: a directory that
receives the converted disks and VM definitions instead of a cluster. Made by the
inventory service's bootstrap for providers of type ``local``.

It checks once that the directory exists (creating it if needed) and is writable,
reports ready or an error saying what to fix, and retries the check with capped
back-off while it fails. Once ready, it lists the VMs already in the directory (every
``<namespace>/<vm>/`` holding anything, with the MACs of its ``virtualmachine.yaml``)
as ``targetvm`` records, again every ``rescan`` seconds, so the planner's "VM already
exists on the target" concern covers a local target as it does a cluster. The listing
reads names and one small manifest per VM and follows no symlink; the planner has
already refused a path outside ``FERRY_LOCAL_TARGET_ROOTS`` when the provider was added.
"""

import asyncio
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ferry_inventory.domain.ports import InventorySink, KindAndRecord, StatusReporter
from ferry_shared.dns1123 import is_dns1123_label
from ferry_shared.inventory import TargetVmRecord
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus
from ferry_shared.retry import Backoff, pause

log = logging.getLogger(__name__)

PATH_NOT_DIRECTORY = "path_not_directory"
PATH_NOT_WRITABLE = "path_not_writable"
FIRST_RETRY = 1.0
MAX_RETRY = 60.0
RESCAN = 5.0
VM_FILE = "virtualmachine.yaml"
MAX_MANIFEST = 1024 * 1024


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


def _real_directories(path: Path) -> list[Path]:
    """The entries of ``path`` that are directories (not symlinks) with DNS-1123 names."""
    try:
        with os.scandir(path) as listing:
            entries = list(listing)
    except OSError:
        return []
    return sorted(
        Path(entry.path) for entry in entries if entry.is_dir(follow_symlinks=False) and is_dns1123_label(entry.name)
    )


def _macs(directory: Path) -> tuple[str, ...]:
    try:
        info = os.lstat(directory / VM_FILE)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MANIFEST:
            return ()
        manifest: Any = yaml.safe_load((directory / VM_FILE).read_text())
        interfaces = manifest["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
        return tuple(str(nic["macAddress"]).upper() for nic in interfaces if nic.get("macAddress"))
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return ()


def _holds_anything(directory: Path) -> bool:
    try:
        with os.scandir(directory) as listing:
            return any(True for _ in listing)
    except OSError:
        return False


def list_vms(path: str) -> list[KindAndRecord]:
    """The VMs in the target directory ``path``: each non-empty ``<namespace>/<vm>/``."""
    records: list[KindAndRecord] = []
    for namespace in _real_directories(Path(path)):
        for directory in _real_directories(namespace):
            if not _holds_anything(directory):
                continue  # an empty directory is in nobody's way
            name = f"{namespace.name}/{directory.name}"
            record = TargetVmRecord(id=name, name=directory.name, namespace=namespace.name, macs=_macs(directory))
            records.append(("targetvm", record))
    return records


class LocalTargetWatcher:
    """Reports whether a local target directory can be written to."""

    def __init__(
        self,
        spec: ProviderSpec,
        *,
        retry_initial: float = FIRST_RETRY,
        retry_max: float = MAX_RETRY,
        rescan: float = RESCAN,
    ) -> None:
        """A failed check is retried after ``retry_initial`` seconds, doubled after each
        failure up to ``retry_max``; the VMs are listed again every ``rescan`` seconds."""
        self._spec = spec
        self._retry = (retry_initial, retry_max)
        self._rescan = rescan

    def __repr__(self) -> str:
        return f"LocalTargetWatcher({self._spec.name!r})"

    async def run(self, sink: InventorySink, status: StatusReporter, stop: asyncio.Event) -> None:
        backoff = Backoff(*self._retry)
        while not stop.is_set():
            checked = await asyncio.to_thread(check_directory, self._spec.path)
            if checked.phase == ProviderPhase.READY:
                await self._list(sink, status, checked, stop)
                return
            delay = backoff.next()
            log.warning("local target %s: %s; again in %.0fs", self._spec.name, checked.message, delay)
            await status.report(checked)
            await pause(delay, stop=stop)

    async def _list(
        self, sink: InventorySink, status: StatusReporter, ready: ProviderStatus, stop: asyncio.Event
    ) -> None:
        listed = await asyncio.to_thread(list_vms, self._spec.path)
        await sink.replace_all(listed)
        await status.report(ready)
        while not stop.is_set():
            await pause(self._rescan, stop=stop)
            if stop.is_set():
                return
            found = await asyncio.to_thread(list_vms, self._spec.path)
            if found != listed:
                listed = found
                await sink.replace_all(listed)
