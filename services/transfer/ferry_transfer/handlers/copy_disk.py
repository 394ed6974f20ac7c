"""The ``CopyDisk`` use case: copy one source disk to its sink, verify it, and say so.

One worker copies one disk per command with several ranges in flight: it opens the
source (logging in to the provider or reusing the session), opens the sink, runs the
copier (which verifies the target and re-copies differing ranges once) while holding the
message's lease and publishing throttled ``DiskCopyProgress``, closes both ends and
publishes ``DiskCopied``. A cancelled VM's copy stops at once (or is never started) and
ends with ``DiskCopyCanceled``; the command is acked either way.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ferry_shared.errors import PermanentError
from ferry_shared.migrations import CopyDisk, DiskCopied, DiskCopyCanceled, DiskCopyProgress, step_id
from ferry_transfer.adapters.cancellation import CancellationRegistry, run_unless_cancelled
from ferry_transfer.adapters.copier import CopyResult, copy_disk
from ferry_transfer.adapters.progress import ProgressReporter
from ferry_transfer.domain.ranges import MiB

from .failures import copy_failures
from .ports import EventPublisher, Leased, SinkOpener, SourceOpener

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyOptions:
    requests_in_flight: int = 4
    """Ranges of one disk read and written at once (and HTTP connections to the datastore)."""
    range_size: int = 16 * MiB
    progress_interval: float = 0.5
    """Least time between two ``DiskCopyProgress`` events of one disk."""


class CopyDiskHandler:
    """Handles ``CopyDisk`` (see the module docstring)."""

    def __init__(
        self,
        *,
        sources: SourceOpener,
        sinks: SinkOpener,
        publisher: EventPublisher,
        cancellations: CancellationRegistry,
        options: CopyOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = sources
        self._sinks = sinks
        self._publisher = publisher
        self._cancellations = cancellations
        self._options = options or CopyOptions()
        self._clock = clock

    async def __call__(self, command: CopyDisk, delivery: Leased) -> None:
        if command.source.type != "vsphere":
            raise PermanentError(
                "unsupported_source",
                f"disk {command.disk.key} of VM {command.vm_id} comes from a {command.source.type} provider; "
                "the transfer copies from vSphere only",
            )
        with self._cancellations.track(command.migration, command.vm_id) as cancelled:
            if cancelled.is_set():
                log.info("not copying disk %d of cancelled VM %s", command.disk.key, command.vm_id)
                await self._canceled(command)
                return
            started = self._clock()
            async with delivery.lease():
                with copy_failures(command):
                    was_cancelled, result = await run_unless_cancelled(self._copy(command), cancelled)
        if was_cancelled or result is None:
            log.info("cancelled the copy of disk %d of VM %s", command.disk.key, command.vm_id)
            await self._canceled(command)
            return
        seconds = self._clock() - started
        log.info(
            "copied disk %d of VM %s to %s: %d bytes in %.1fs",
            command.disk.key,
            command.vm_id,
            command.sink.describe(),
            command.disk.capacity_bytes,
            seconds,
        )
        await self._publisher.publish(
            DiskCopied(
                message_id=step_id(command.migration, command.vm_id, "disk_copied", command.disk.key),
                migration=command.migration,
                vm_id=command.vm_id,
                disk_key=command.disk.key,
                bytes_total=command.disk.capacity_bytes,
                bytes_read=result.bytes_read,
                bytes_written=result.bytes_written,
                zero_bytes_skipped=result.zero_bytes_skipped,
                sha256=result.sha256,
                seconds=round(seconds, 3),
            )
        )

    async def _copy(self, command: CopyDisk) -> CopyResult:
        disk, options = command.disk, self._options

        async def publish_progress(done: int) -> None:
            await self._publisher.publish(
                DiskCopyProgress(
                    message_id=step_id(command.migration, command.vm_id, "progress", disk.key, done),
                    migration=command.migration,
                    vm_id=command.vm_id,
                    disk_key=disk.key,
                    bytes_done=done,
                    bytes_total=disk.capacity_bytes,
                )
            )

        progress = ProgressReporter(publish_progress, options.progress_interval)
        async with (
            self._sources.open(command.source, disk, options.requests_in_flight) as source,
            self._sinks.open(command.sink) as sink,
        ):
            if sink.size < disk.capacity_bytes:
                raise PermanentError(
                    "sink_too_small",
                    f"the sink {command.sink.describe()} holds {sink.size} bytes but disk {disk.key} "
                    f"({disk.file_name}) has {disk.capacity_bytes}; the target volume must be at least as large",
                )
            async with progress:
                result = await copy_disk(
                    source,
                    sink,
                    disk.capacity_bytes,
                    range_size=options.range_size,
                    in_flight=options.requests_in_flight,
                    on_progress=progress.update,
                )
        await progress.flush()
        return result

    async def _canceled(self, command: CopyDisk) -> None:
        await self._publisher.publish(
            DiskCopyCanceled(
                message_id=step_id(command.migration, command.vm_id, "disk_copy_canceled", command.disk.key),
                migration=command.migration,
                vm_id=command.vm_id,
                disk_key=command.disk.key,
            )
        )
