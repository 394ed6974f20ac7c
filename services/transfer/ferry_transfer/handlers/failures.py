"""What a failed disk or range copy means for its command: a :class:`PermanentError` (the planner fails
the VM with the message) or a :class:`TemporaryError` (the command comes back after a delay).

Messages name the disk (and range), the source provider and the sink, and say what to do;
they carry the adapters' own messages, which never contain the password or the session cookie.
The failures told apart are the domain's (:mod:`ferry_transfer.domain.errors`), raised by the
adapters: a refused request or a lost connection comes from an NBD sink, a file sink fails
with ``OSError``.
"""

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from nats.errors import Error as NatsError

from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.migrations import CopyDisk, CopyRange
from ferry_shared.vsphere.errors import API_ERROR, CONNECTION_LOST, UNREACHABLE, ProviderError
from ferry_transfer.domain.errors import (
    CheckpointConflict,
    CheckpointMissing,
    RangeMismatch,
    SinkConnectionLost,
    SinkRequestRefused,
    SinkUnavailable,
    SourceReadError,
)

RETRY_DELAY = 10.0
CHECKPOINT_RETRY_DELAY = 2.0
LOGIN_RETRYABLE = frozenset({UNREACHABLE, CONNECTION_LOST, API_ERROR})
"""Login failures that may pass; every other one (wrong password, untrusted certificate, …) needs a person."""
SINK_ERRNOS_PERMANENT = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EINVAL}
)


def describe(command: CopyDisk | CopyRange) -> str:
    """``copying [range N of ]disk K (file) of VM X``."""
    disk = command.disk
    part = f"range {command.index} of " if isinstance(command, CopyRange) else ""
    return f"copying {part}disk {disk.key} ({disk.file_name}) of VM {command.vm_id}"


@contextmanager
def copy_failures(command: CopyDisk | CopyRange) -> Iterator[None]:
    """Turn the expected failures of copying ``command``'s disk or range into step errors."""
    sink = command.sink.describe()
    what = describe(command)
    try:
        yield
    except (PermanentError, TemporaryError):
        raise
    except ProviderError as error:
        message = f"{what}: logging in to source provider '{command.source.name}' failed: {error.message}"
        if error.reason in LOGIN_RETRYABLE:
            raise TemporaryError(error.reason, message, delay=RETRY_DELAY) from error
        raise PermanentError(error.reason, message) from error
    except (SourceReadError, SinkUnavailable) as error:
        if error.retryable:
            raise TemporaryError(error.code, f"{what}: {error.message}", delay=RETRY_DELAY) from error
        raise PermanentError(error.code, f"{what}: {error.message}") from error
    except RangeMismatch as error:
        raise PermanentError(
            "checksum_mismatch", f"{what} to {sink}: {error}; the target storage may be failing"
        ) from error
    except (NatsError, CheckpointConflict) as error:
        raise TemporaryError(
            "checkpoint_unavailable",
            f"{what}: the checkpoint in NATS could not be read or written ({type(error).__name__}: {error})",
            delay=CHECKPOINT_RETRY_DELAY,
        ) from error
    except CheckpointMissing as error:
        raise PermanentError("checkpoint_missing", f"{what}: {error}; copy the disk again") from error
    except (SinkRequestRefused, OSError) as error:
        raise _sink_failure(what, sink, error) from error


def _sink_failure(what: str, sink: str, error: SinkRequestRefused | OSError) -> PermanentError | TemporaryError:
    if isinstance(error, SinkConnectionLost):
        return TemporaryError(
            "sink_connection_lost", f"{what}: the connection to the NBD sink {sink} broke ({error})", delay=RETRY_DELAY
        )
    if isinstance(error, SinkRequestRefused):
        message = f"{what}: the NBD sink {sink} refused a request ({error})"
    else:
        message = f"{what}: writing {sink} failed ({error.strerror or error})"
    if error.errno in SINK_ERRNOS_PERMANENT:
        return PermanentError("sink_write_failed", f"{message}; check the target volume")
    return TemporaryError("sink_write_failed", message, delay=RETRY_DELAY)
