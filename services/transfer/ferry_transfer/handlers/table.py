"""The transfer's handler table: each command type's handler with its dependencies bound."""

import asyncio
import functools

from ferry_shared.bus.consumer import HandlerTable
from ferry_shared.migrations import CopyDisk, CopyRange
from ferry_transfer.domain.ports import ChangedAreas, CopyPorts, RangeCopier

from .copy_disk import CopyOptions, copy_disk
from .copy_range import RangeOptions, copy_range


def handler_table(
    ports: CopyPorts,
    *,
    cbt: ChangedAreas,
    copier: RangeCopier,
    disk: CopyOptions,
    ranges: RangeOptions,
    copy_slots: int,
) -> HandlerTable:
    """Command type → handler, with dependencies bound; at most ``copy_slots`` ranges are copied at once."""
    slots = asyncio.Semaphore(copy_slots)
    return {
        CopyDisk: functools.partial(copy_disk, ports=ports, cbt=cbt, options=disk),
        CopyRange: functools.partial(copy_range, ports=ports, copier=copier, options=ranges, slots=slots),
    }
