"""Logging in to vCenter with pyvmomi, and out again.

:func:`open_session` probes TLS first (see :mod:`.trust`), then logs in through
``SmartConnect`` (which picks the newest API version both sides speak) and checks that
the endpoint is a vCenter. Each expected failure becomes a :class:`ProviderError`; the
password is passed to pyvmomi only and appears in no message.
"""

import http.client
import logging
import ssl
from dataclasses import dataclass

from pyVim.connect import SmartConnect
from pyVmomi import vim, vmodl
from pyVmomi.Security import ThumbprintMismatchException

from ferry_inventory.adapters.vsphere.endpoint import Endpoint
from ferry_inventory.adapters.vsphere.errors import (
    API_ERROR,
    CERTIFICATE_UNTRUSTED,
    INVALID_LOGIN,
    NOT_VCENTER,
    THUMBPRINT_MISMATCH,
    UNREACHABLE,
    ProviderError,
)
from ferry_shared.credentials import Secret

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: Secret


@dataclass(frozen=True)
class Session:
    """A logged-in connection to one vCenter."""

    endpoint: Endpoint
    content: vim.ServiceInstanceContent

    def close(self) -> None:
        """Log out; a failure here only matters to the log."""
        try:
            self.content.sessionManager.Logout()
        except (vmodl.MethodFault, OSError, http.client.HTTPException) as error:
            log.debug("logout from %s failed: %s", self.endpoint, type(error).__name__)


def open_session(
    endpoint: Endpoint, context: ssl.SSLContext, pinned: str, credentials: Credentials, timeout: float
) -> Session:
    """Log in to vCenter at ``endpoint`` (TLS already probed with ``context``/``pinned``)."""
    si = _login(endpoint, context, pinned, credentials, timeout)
    content = si.RetrieveContent()
    about = content.about
    if about.apiType != "VirtualCenter":
        Session(endpoint, content).close()
        raise ProviderError(
            NOT_VCENTER,
            f"{endpoint} is {about.fullName} (API type {about.apiType}), not vCenter; "
            "give the address of the vCenter that manages it",
        )
    return Session(endpoint, content)


def _login(
    endpoint: Endpoint, context: ssl.SSLContext, pinned: str, credentials: Credentials, timeout: float
) -> vim.ServiceInstance:
    try:
        si: vim.ServiceInstance = SmartConnect(  # type: ignore[no-untyped-call]
            protocol="https",
            host=endpoint.host,
            port=endpoint.port,
            path=endpoint.path,
            user=credentials.username,
            pwd=credentials.password.reveal(),
            sslContext=context,
            thumbprint=pinned.replace(":", "") or None,
            httpConnectionTimeout=timeout,
        )
    except vim.fault.InvalidLogin as error:
        raise ProviderError(
            INVALID_LOGIN,
            f"vCenter at {endpoint} refused the user name {credentials.username!r} or its password; "
            "check both and update the provider",
        ) from error
    except ThumbprintMismatchException as error:
        raise ProviderError(
            THUMBPRINT_MISMATCH, f"the certificate of {endpoint} changed while connecting: {error}"
        ) from error
    except ssl.SSLCertVerificationError as error:
        raise ProviderError(
            CERTIFICATE_UNTRUSTED, f"the certificate of {endpoint} is not trusted: {error.verify_message}"
        ) from error
    except vmodl.MethodFault as error:
        raise ProviderError(API_ERROR, f"vCenter at {endpoint} refused the login: {error.msg}") from error
    except (OSError, http.client.HTTPException) as error:
        raise ProviderError(UNREACHABLE, f"lost the connection to {endpoint} while logging in: {error}") from error
    except Exception as error:  # noqa: BLE001 - pyVim raises a plain Exception for non-vSphere servers
        raise ProviderError(
            NOT_VCENTER,
            f"{endpoint} does not answer like a vSphere SDK endpoint ({type(error).__name__}); "
            "check that the url points at vCenter (https://<vcenter>/sdk)",
        ) from error
    return si
