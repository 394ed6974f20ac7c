"""Logging in to vCenter with pyvmomi, and out again.

:func:`open_session` runs after the TLS probe (see :mod:`.trust`): it makes a SOAP stub
with ``SmartStubAdapter`` (which picks the newest API version both sides speak), checks
that the endpoint is a vCenter before sending any credentials, and logs in. Each expected
failure becomes a :class:`ProviderError` (:mod:`.answers` says which answers mean what);
an unexpected exception goes on as it is. The password is passed to pyvmomi only and
appears in no message.

A process that holds no password gets a session with :func:`clone_session`, from a one-time
ticket that a logged-in session acquired (:meth:`Session.acquire_clone_ticket`): the transfer's
way in, with tickets from the inventory (``docs/security.md``).
"""

import http.client
import logging
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyVim.connect import SmartStubAdapter
from pyVmomi import vim, vmodl
from pyVmomi.SoapAdapter import SoapStubAdapter

from ferry_shared.credentials import Secret
from ferry_shared.vsphere.answers import SdkAnswer, is_no_sdk, login_error, no_sdk_error, require_service_content
from ferry_shared.vsphere.calls import session_errors
from ferry_shared.vsphere.endpoint import Endpoint
from ferry_shared.vsphere.errors import INVALID_LOGIN, NOT_VCENTER, ProviderError

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

    def acquire_clone_ticket(self) -> Secret:
        """A one-time ticket with which another process opens a session of its own as this
        session's user (:func:`clone_session`); :class:`SessionLostError` if this one ended."""
        manager = self.content.sessionManager
        if manager is None:
            raise ProviderError(NOT_VCENTER, f"{self.endpoint} offers no session manager, so it is not a vCenter")
        with session_errors(self.endpoint):
            return Secret(str(manager.AcquireCloneTicket()))

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

    def log_in(manager: vim.SessionManager) -> None:
        manager.Login(credentials.username, credentials.password.reveal(), None)

    return _session(endpoint, context, pinned, timeout, credentials.username, log_in)


def clone_session(endpoint: Endpoint, context: ssl.SSLContext, pinned: str, ticket: Secret, timeout: float) -> Session:
    """A session of its own at ``endpoint`` from a one-time clone ticket (TLS already probed)."""

    def clone(manager: vim.SessionManager) -> None:
        try:
            manager.CloneSession(ticket.reveal())
        except vim.fault.InvalidLogin as error:
            raise ProviderError(
                INVALID_LOGIN,
                f"vCenter at {endpoint} refused the clone ticket (used already, expired, or issued by another vCenter)",
            ) from error

    return _session(endpoint, context, pinned, timeout, "(clone ticket)", clone)


def _session(
    endpoint: Endpoint,
    context: ssl.SSLContext,
    pinned: str,
    timeout: float,
    username: str,
    authenticate: Callable[[vim.SessionManager], None],
) -> Session:
    """Connect, check that the endpoint is a vCenter before sending any secret, authenticate."""
    with _login_errors(endpoint, username):
        stub = _stub(endpoint, context, pinned, timeout)
    service: vim.ServiceInstance = vim.ServiceInstance("ServiceInstance", stub)  # type: ignore[no-untyped-call]
    try:
        with _login_errors(endpoint, username):
            content = require_service_content(endpoint, service.RetrieveContent())
            _require_vcenter(endpoint, content.about)
            if content.sessionManager is None:
                raise ProviderError(NOT_VCENTER, f"{endpoint} offers no session manager, so it is not a vCenter")
            authenticate(content.sessionManager)
    except BaseException:
        service._stub.DropConnections()
        raise
    return Session(endpoint, service, content)


def _stub(endpoint: Endpoint, context: ssl.SSLContext, pinned: str, timeout: float) -> SoapStubAdapter:
    """A SOAP stub speaking the newest API version both sides know."""
    try:
        stub: SoapStubAdapter = SmartStubAdapter(  # type: ignore[no-untyped-call]
            host=endpoint.host,
            port=endpoint.port,
            path=endpoint.path,
            sslContext=context,
            thumbprint=pinned.replace(":", "") or None,
            httpConnectionTimeout=timeout,
        )
    except Exception as error:
        if not is_no_sdk(error):
            raise
        # pyVim says only "down or not a VIM server": ask again, to say which.
        raise no_sdk_error(endpoint, _sdk_answer(endpoint, context, timeout)) from error
    return stub


def _sdk_answer(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> SdkAnswer:
    """How the endpoint answers a GET of the SDK's version document (no credentials are sent)."""
    connection = http.client.HTTPSConnection(endpoint.host, endpoint.port, context=context, timeout=timeout)
    try:
        connection.request("GET", f"{endpoint.path}/vimServiceVersions.xml")
        response = connection.getresponse()
        return SdkAnswer(response.status, response.reason, response.getheader("Content-Type") or "")
    finally:
        connection.close()


SUPPORTED_API_TYPES = ("VirtualCenter", "HostAgent")  # a vCenter, or a standalone ESXi host


def _require_vcenter(endpoint: Endpoint, about: vim.AboutInfo) -> None:
    if about.apiType not in SUPPORTED_API_TYPES:
        raise ProviderError(
            NOT_VCENTER,
            f"{endpoint} is {about.fullName} (API type {about.apiType}), neither vCenter nor ESXi; "
            "give the address of a vCenter or an ESXi host",
        )


@contextmanager
def _login_errors(endpoint: Endpoint, username: str) -> Iterator[None]:
    """Known failures of version discovery and login, as :class:`ProviderError` s."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as error:
        known = login_error(endpoint, username, error)
        if known is None:
            raise
        raise known from error
