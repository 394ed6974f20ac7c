"""What a failed vSphere call during a session means for the watcher.

:func:`session_errors` wraps the load and the change feed: a lost session becomes
:class:`SessionLostError` (log in again, reload everything); a broken connection, a missing
privilege or another fault becomes a :class:`ProviderError` with a reason.
"""

import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from xml.parsers.expat import ExpatError

from pyVmomi import vim, vmodl

from ferry_shared.vsphere.endpoint import Endpoint
from ferry_shared.vsphere.errors import (
    API_ERROR,
    CONNECTION_LOST,
    NO_PERMISSION,
    ProviderError,
    SessionLostError,
    fault_text,
)


@contextmanager
def session_errors(endpoint: Endpoint) -> Iterator[None]:
    try:
        yield
    except vim.fault.NotAuthenticated as error:
        raise SessionLostError(f"vCenter at {endpoint} ended the session") from error
    except vim.fault.NoPermission as error:
        raise ProviderError(
            NO_PERMISSION,
            f"the user may not read the inventory of {endpoint} (missing privilege {error.privilegeId}); "
            "give it at least the Read-only role on the root folder, propagated",
        ) from error
    except vmodl.MethodFault as error:
        raise ProviderError(
            API_ERROR, f"vCenter at {endpoint} failed a call with {type(error).__name__}: {fault_text(error)}"
        ) from error
    except ExpatError as error:
        raise ProviderError(
            API_ERROR, f"vCenter at {endpoint} sent an answer that is not valid SOAP ({error})"
        ) from error
    except (OSError, http.client.HTTPException) as error:
        raise ProviderError(
            CONNECTION_LOST, f"lost the connection to {endpoint} ({type(error).__name__}: {error}); reconnecting"
        ) from error
