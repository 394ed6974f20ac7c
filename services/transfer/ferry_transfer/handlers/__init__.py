"""Use cases of the transfer service: one handler per command, and the handler table."""

from ferry_shared.bus.consumer import HandlerTable
from ferry_shared.migrations import CopyDisk

from .copy_disk import CopyDiskHandler, CopyOptions

__all__ = ["CopyDiskHandler", "CopyOptions", "handler_table"]


def handler_table(copy_disk: CopyDiskHandler) -> HandlerTable:
    """Command type → handler."""
    return {CopyDisk: copy_disk}
