"""The failures of a disk copy that the transfer's handlers tell apart; adapters raise them,
:mod:`ferry_transfer.handlers.failures` turns them into permanent or temporary step errors."""

from ferry_shared.errors import FerryError

from .disk_plan import RangeWork


class CheckpointConflict(Exception):  # noqa: N818 - reads as what happened
    """A record kept changing under us for too many attempts."""


class CheckpointMissing(Exception):  # noqa: N818 - reads as what happened
    """There is no record to change (it was removed)."""


class SourceReadError(FerryError):
    """A range of the source disk could not be read. ``retryable``: a later attempt may succeed.

    ``code`` says why: ``disk_not_found`` (404), ``datastore_access_denied`` (401/403),
    ``thumbprint_mismatch``, ``certificate_untrusted``, else ``source_read_failed``.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        retryable: bool = False,
        code: str = "source_read_failed",
    ) -> None:
        super().__init__(code, message)
        self.url = url
        self.status = status
        self.retryable = retryable


class SinkUnavailable(FerryError):  # noqa: N818 - reads as what happened
    """The sink could not be opened or prepared. ``retryable``: a later attempt may succeed."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(code, message)
        self.retryable = retryable


class SinkRequestRefused(Exception):  # noqa: N818 - reads as what happened
    """The sink refused one request (its connection is still usable); ``errno`` says why (Linux numbering).

    The NBD client's ``NbdError`` is one."""

    errno: int


class SinkConnectionLost(ConnectionError):  # noqa: N818 - reads as what happened
    """The connection to the sink is broken or closed (the NBD client's ``NbdConnectionError`` is one)."""


class RangeMismatch(Exception):  # noqa: N818 - reads as what happened
    """What the sink holds differs from what was read, at ``offset``, even after copying the range again."""

    def __init__(self, work: RangeWork, offset: int, attempts: int) -> None:
        super().__init__(
            f"the target differs from the source at offset {offset} of range {work.index} "
            f"([{work.offset}, {work.end})) after {attempts} copies"
        )
        self.offset = offset
