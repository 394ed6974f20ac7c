"""Which answers of an endpoint, while logging in, are known failures, and what they mean.

:mod:`.session` calls :func:`login_error` with whatever version discovery or login
raised: a known answer becomes a :class:`ProviderError` (``not_vcenter`` only for answers
that show the endpoint is something else: no SDK document, HTTP 3xx/4xx, something that is
not SOAP, no ServiceContent); anything else gives None, and the caller lets the exception
go on, because an exception nobody expected is a bug, not a setting to fix.
"""

import http.client
import re
import ssl
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

from pyVmomi import vim, vmodl
from pyVmomi.Security import ThumbprintMismatchException

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

CHECK_URL = "check that the url points at vCenter (https://<vcenter>/sdk)"

_NO_SDK = re.compile(r".+ is down or is not a VIM server")
"""What pyVim's ``SmartStubAdapter`` raises (a bare ``Exception``) when ``<path>/vimServiceVersions.xml``
answered, but not with a version list it can use."""
_HTTP_STATUS = re.compile(r"(\d{3}) (.*)", re.DOTALL)
"""pyVmomi's ``HTTPException`` for a SOAP call answered with a status other than 200 or 500."""


@dataclass(frozen=True)
class SdkAnswer:
    """How the endpoint answered a GET of ``<path>/vimServiceVersions.xml``."""

    status: int
    reason: str
    content_type: str


def is_no_sdk(error: BaseException) -> bool:
    """Whether version discovery found no usable SDK version document (see :func:`no_sdk_error`)."""
    return type(error) is Exception and _NO_SDK.fullmatch(str(error)) is not None


def no_sdk_error(endpoint: Endpoint, answer: SdkAnswer) -> ProviderError:
    """What the answer to the SDK's version document means: a server error is temporary
    (a vCenter that is starting answers 503), anything else is not a vCenter."""
    document = f"{endpoint.path}/vimServiceVersions.xml"
    said = f"HTTP {answer.status} {answer.reason}".strip()
    if answer.status >= 500:
        return ProviderError(UNREACHABLE, f"{endpoint} answered {said} for {document}; vCenter may be starting")
    if answer.status != 200:
        return ProviderError(NOT_VCENTER, f"{endpoint} has no vSphere SDK at {endpoint.path} ({said}); {CHECK_URL}")
    if "xml" not in answer.content_type.lower():
        return ProviderError(
            NOT_VCENTER, f"{endpoint} answered {document} with {answer.content_type or 'no content type'}; {CHECK_URL}"
        )
    return ProviderError(NOT_VCENTER, f"{endpoint} lists no vSphere API version this client speaks in {document}")


def require_service_content(endpoint: Endpoint, content: object) -> vim.ServiceInstanceContent:
    """The ServiceContent a vSphere endpoint answers ``RetrieveServiceContent`` with."""
    if not isinstance(content, vim.ServiceInstanceContent) or content.about is None:
        raise ProviderError(NOT_VCENTER, f"{endpoint} answered without a vSphere ServiceContent; {CHECK_URL}")
    return content


def login_error(endpoint: Endpoint, username: str, error: BaseException) -> ProviderError | None:
    """The :class:`ProviderError` a known failure of version discovery or login means; None
    for anything else."""
    if isinstance(error, vim.fault.InvalidLogin):
        return ProviderError(
            INVALID_LOGIN,
            f"vCenter at {endpoint} refused the user name {username!r} or its password; "
            "check both and set them with `ferry provider update NAME --username USER --password-stdin`",
        )
    if isinstance(error, ThumbprintMismatchException):
        return ProviderError(THUMBPRINT_MISMATCH, f"the certificate of {endpoint} changed while connecting: {error}")
    if isinstance(error, ssl.SSLCertVerificationError):
        return ProviderError(
            CERTIFICATE_UNTRUSTED, f"the certificate of {endpoint} is not trusted: {error.verify_message}"
        )
    if isinstance(error, vmodl.MethodFault):
        return ProviderError(API_ERROR, f"vCenter at {endpoint} refused the login: {fault_text(error)}")
    if isinstance(error, ExpatError):
        return ProviderError(NOT_VCENTER, f"{endpoint} answered with something that is not SOAP ({error})")
    if type(error) is http.client.HTTPException and (status := _HTTP_STATUS.fullmatch(str(error))):
        return _http_status_error(endpoint, int(status.group(1)), status.group(2))
    if isinstance(error, OSError | http.client.HTTPException):
        return ProviderError(UNREACHABLE, f"lost the connection to {endpoint} while logging in: {error}")
    return None


def _http_status_error(endpoint: Endpoint, status: int, reason: str) -> ProviderError:
    said = f"HTTP {status} {reason}".strip()
    if status >= 500:
        return ProviderError(UNREACHABLE, f"{endpoint} answered the SOAP call with {said}; vCenter may be starting")
    return ProviderError(NOT_VCENTER, f"{endpoint} answered the SOAP call with {said}; {CHECK_URL}")
