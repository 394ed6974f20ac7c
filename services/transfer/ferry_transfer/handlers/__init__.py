"""Use cases of the transfer service: one handler function per command (:mod:`.copy_disk`,
:mod:`.copy_range`), and the handler table the bootstrap gives the service's consumer."""

from .copy_disk import CopyOptions
from .copy_range import RangeOptions
from .table import handler_table

__all__ = ["CopyOptions", "RangeOptions", "handler_table"]
