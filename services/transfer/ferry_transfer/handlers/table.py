"""The transfer's handler table: each command type's handler with its dependencies bound."""

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
) -> HandlerTable:
    """Command type → handler, with dependencies bound."""
    return {
        CopyDisk: functools.partial(copy_disk, ports=ports, cbt=cbt, options=disk),
        CopyRange: functools.partial(copy_range, ports=ports, copier=copier, options=ranges),
    }
