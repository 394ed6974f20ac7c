"""Use cases of the transfer service: one handler per command, and the handler table."""

from ferry_shared.bus.consumer import HandlerTable
from ferry_shared.migrations import CopyDisk, CopyRange

from .copy_disk import CopyDiskHandler, CopyOptions
from .copy_range import CopyRangeHandler, RangeOptions

__all__ = ["CopyDiskHandler", "CopyOptions", "CopyRangeHandler", "RangeOptions", "handler_table"]


def handler_table(copy_disk: CopyDiskHandler, copy_range: CopyRangeHandler) -> HandlerTable:
    """Command type → handler."""
    return {CopyDisk: copy_disk, CopyRange: copy_range}
