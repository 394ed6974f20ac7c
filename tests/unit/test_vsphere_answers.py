"""Which login failures are known vSphere answers: only those that show the endpoint is
something else are ``not_vcenter``; connection failures are ``unreachable``; anything else
(a bug) is no ProviderError at all and goes on as it is."""

import http.client
import ssl
from xml.parsers.expat import ExpatError

import pytest
from pyVmomi import vim
from pyVmomi.Security import ThumbprintMismatchException

from ferry_shared.vsphere.answers import SdkAnswer, is_no_sdk, login_error, no_sdk_error, require_service_content
from ferry_shared.vsphere.endpoint import Endpoint
from ferry_shared.vsphere.errors import ProviderError

VC = Endpoint("vc.example.com")


def reason_of(error: BaseException) -> str | None:
    known = login_error(VC, "admin", error)
    return known.reason if known is not None else None


def untrusted() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError("certificate verify failed")
    error.verify_message = "self-signed certificate"
    return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (vim.fault.InvalidLogin(), "invalid_login"),
        (ThumbprintMismatchException("aa", "bb"), "thumbprint_mismatch"),
        (untrusted(), "certificate_untrusted"),
        (vim.fault.NotAuthenticated(), "api_error"),
        (ExpatError("syntax error: line 1, column 0"), "not_vcenter"),
        (http.client.HTTPException("404 Not Found"), "not_vcenter"),
        (http.client.HTTPException("302 Found"), "not_vcenter"),
        (http.client.HTTPException("503 Service Unavailable"), "unreachable"),
        (http.client.RemoteDisconnected("Remote end closed connection without response"), "unreachable"),
        (http.client.IncompleteRead(b""), "unreachable"),
        (ConnectionRefusedError(111, "Connection refused"), "unreachable"),
        (TimeoutError("timed out"), "unreachable"),
    ],
)
def test_known_answers_have_their_reason(error: BaseException, reason: str) -> None:
    assert reason_of(error) == reason


@pytest.mark.parametrize(
    "error",
    [
        KeyError("about"),
        AttributeError("'NoneType' object has no attribute 'about'"),
        TypeError("unsupported operand"),
        RuntimeError("vimServiceVersions.xml has version 2.0, which is not understood"),
        Exception("something else went wrong"),
    ],
)
def test_an_unexpected_exception_is_no_provider_error(error: BaseException) -> None:
    assert login_error(VC, "admin", error) is None


def test_the_messages_name_the_endpoint_and_user_never_a_password() -> None:
    known = login_error(VC, "admin", vim.fault.InvalidLogin())
    assert known is not None
    assert "vc.example.com:443" in known.message and "'admin'" in known.message


def test_pyvim_saying_no_sdk_is_recognized_and_nothing_else() -> None:
    assert is_no_sdk(Exception("vc.example.com:443 is down or is not a VIM server"))
    assert not is_no_sdk(Exception("vc.example.com:443 is down or is not a VIM server, really"))
    assert not is_no_sdk(RuntimeError("vc.example.com:443 is down or is not a VIM server"))


@pytest.mark.parametrize(
    ("answer", "reason", "says"),
    [
        (SdkAnswer(404, "Not Found", "text/plain"), "not_vcenter", "HTTP 404 Not Found"),
        (SdkAnswer(301, "Moved Permanently", "text/html"), "not_vcenter", "HTTP 301"),
        (SdkAnswer(200, "OK", "text/html; charset=utf-8"), "not_vcenter", "text/html"),
        (SdkAnswer(200, "OK", "text/xml"), "not_vcenter", "no vSphere API version"),
        (SdkAnswer(503, "Service Unavailable", "text/html"), "unreachable", "may be starting"),
    ],
)
def test_the_answer_to_the_sdk_document_decides_the_reason(answer: SdkAnswer, reason: str, says: str) -> None:
    error = no_sdk_error(VC, answer)
    assert (error.reason, says in error.message, "vc.example.com:443" in error.message) == (reason, True, True)


def test_a_soap_answer_without_service_content_is_not_a_vcenter() -> None:
    with pytest.raises(ProviderError) as raised:
        require_service_content(VC, None)
    assert raised.value.reason == "not_vcenter"
    with pytest.raises(ProviderError):
        require_service_content(VC, vim.ServiceInstanceContent())  # no AboutInfo
    content = vim.ServiceInstanceContent(about=vim.AboutInfo(apiType="VirtualCenter"))
    assert require_service_content(VC, content) is content
