"""What a failed disk copy means for its command: a :class:`PermanentError` (the planner fails the VM
with the message) or a :class:`TemporaryError` (the command comes back after a delay).

Messages name the disk, the source provider and the sink, and say what to do; they carry
the adapters' own messages, which never contain the password or the session cookie.
"""

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.migrations import CopyDisk
from ferry_shared.vsphere.errors import API_ERROR, CONNECTION_LOST, UNREACHABLE, ProviderError
from ferry_transfer.adapters.copier import ChecksumMismatch
from ferry_transfer.adapters.datastore import SourceReadError
from ferry_transfer.adapters.nbd import NbdConnectionError, NbdError
from ferry_transfer.adapters.sink_factory import SinkUnavailable

RETRY_DELAY = 10.0
LOGIN_RETRYABLE = frozenset({UNREACHABLE, CONNECTION_LOST, API_ERROR})
"""Login failures that may pass; every other one (wrong password, untrusted certificate, …) needs a person."""
SINK_ERRNOS_PERMANENT = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EINVAL}
)


@contextmanager
def copy_failures(command: CopyDisk) -> Iterator[None]:
    """Turn the expected failures of copying ``command``'s disk into step errors."""
    disk, sink = command.disk, command.sink.describe()
    what = f"copying disk {disk.key} ({disk.file_name}) of VM {command.vm_id}"
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
    except ChecksumMismatch as error:
        raise PermanentError(
            "checksum_mismatch",
            f"{what} to {sink}: the {error} even after copying them again; the target storage may be failing",
        ) from error
    except NbdConnectionError as error:
        raise TemporaryError(
            "sink_connection_lost", f"{what}: the connection to the NBD sink {sink} broke ({error})", delay=RETRY_DELAY
        ) from error
    except NbdError as error:
        message = f"{what}: the NBD sink {sink} refused a request ({error})"
        if error.errno in SINK_ERRNOS_PERMANENT:
            raise PermanentError("sink_write_failed", f"{message}; check the target volume") from error
        raise TemporaryError("sink_write_failed", message, delay=RETRY_DELAY) from error
    except OSError as error:
        message = f"{what}: writing {sink} failed ({error.strerror or error})"
        if error.errno in SINK_ERRNOS_PERMANENT:
            raise PermanentError("sink_write_failed", f"{message}; check the target volume") from error
        raise TemporaryError("sink_write_failed", message, delay=RETRY_DELAY) from error
