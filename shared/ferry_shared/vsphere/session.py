"""Logging in to vCenter with pyvmomi, and out again.

:func:`open_session` runs after the TLS probe (see :mod:`.trust`): it makes a SOAP stub
with ``SmartStubAdapter`` (which picks the newest API version both sides speak), checks
that the endpoint is a vCenter before sending any credentials, and logs in. Each expected
failure becomes a :class:`ProviderError`; the password is passed to pyvmomi only and
appears in no message.
"""

import http.client
import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

from pyVim.connect import SmartStubAdapter
from pyVmomi import vim, vmodl
from pyVmomi.Security import ThumbprintMismatchException

from ferry_shared.credentials import Secret
from ferry_shared.vsphere.endpoint import Endpoint
from ferry_shared.vsphere.errors import (
    API_ERROR,
    CERTIFICATE_UNTRUSTED,
    INVALID_LOGIN,
    NOT_VCENTER,
    THUMBPRINT_MISMATCH,
    UNREACHABLE,
    ProviderError,
    fault_text,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: Secret


@dataclass(frozen=True)
class Session:
    """A logged-in connection to one vCenter."""

    endpoint: Endpoint
    service: vim.ServiceInstance
    content: vim.ServiceInstanceContent

    def close(self) -> None:
        """Log out and close the pooled connections; failures only matter to the log."""
        manager = self.content.sessionManager
        try:
            if manager is not None:
                manager.Logout()
        except (vmodl.MethodFault, OSError, http.client.HTTPException) as error:
            log.debug("logout from %s failed: %s", self.endpoint, type(error).__name__)
        finally:
            self.service._stub.DropConnections()


def open_session(
    endpoint: Endpoint, context: ssl.SSLContext, pinned: str, credentials: Credentials, timeout: float
) -> Session:
    """Log in to vCenter at ``endpoint`` (TLS already probed with ``context``/``pinned``)."""
    with _login_errors(endpoint, credentials):
        stub = SmartStubAdapter(  # type: ignore[no-untyped-call]
            host=endpoint.host,
            port=endpoint.port,
            path=endpoint.path,
            sslContext=context,
            thumbprint=pinned.replace(":", "") or None,
            httpConnectionTimeout=timeout,
        )
    service: vim.ServiceInstance = vim.ServiceInstance("ServiceInstance", stub)  # type: ignore[no-untyped-call]
    try:
        with _login_errors(endpoint, credentials):
            content = service.RetrieveContent()
            _require_vcenter(endpoint, content.about)
            if content.sessionManager is None:
                raise ProviderError(NOT_VCENTER, f"{endpoint} offers no session manager, so it is not a vCenter")
            content.sessionManager.Login(credentials.username, credentials.password.reveal(), None)
    except BaseException:
        service._stub.DropConnections()
        raise
    return Session(endpoint, service, content)


SUPPORTED_API_TYPES = ("VirtualCenter", "HostAgent")  # a vCenter, or a standalone ESXi host


def _require_vcenter(endpoint: Endpoint, about: vim.AboutInfo) -> None:
    if about.apiType not in SUPPORTED_API_TYPES:
        raise ProviderError(
            NOT_VCENTER,
            f"{endpoint} is {about.fullName} (API type {about.apiType}), neither vCenter nor ESXi; "
            "give the address of a vCenter or an ESXi host",
        )


@contextmanager
def _login_errors(endpoint: Endpoint, credentials: Credentials) -> Iterator[None]:
    """Expected failures of version discovery and login, as :class:`ProviderError` s."""
    try:
        yield
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
        raise ProviderError(API_ERROR, f"vCenter at {endpoint} refused the login: {fault_text(error)}") from error
    except ExpatError as error:
        raise ProviderError(NOT_VCENTER, f"{endpoint} answered with something that is not SOAP ({error})") from error
    except (OSError, http.client.HTTPException) as error:
        raise ProviderError(UNREACHABLE, f"lost the connection to {endpoint} while logging in: {error}") from error
    except ProviderError:
        raise
    except Exception as error:
        raise ProviderError(
            NOT_VCENTER,
            f"{endpoint} does not answer like a vSphere SDK endpoint ({type(error).__name__}); "
            "check that the url points at vCenter (https://<vcenter>/sdk)",
        ) from error
