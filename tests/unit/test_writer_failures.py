"""How kubevirt-writer reads a failed call to a target cluster: which failures are worth
retrying, and what the message tells a person to do. The exceptions are built as the
Kubernetes client and urllib3 raise them; nothing is called."""

import json

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ferry_kubevirt_writer.adapters.kubernetes.failures import Call, failure
from ferry_kubevirt_writer.adapters.kubernetes.resources import DATA_VOLUMES, PODS, PVCS
from ferry_shared.errors import PermanentError, TemporaryError

SERVER = "https://10.0.0.1:6443"


def api_error(status: int, message: str, **details: str) -> ApiException:
    body = {"kind": "Status", "status": "Failure", "message": message, "code": status}
    if details:
        body["details"] = details
    return ApiException(status=status, reason="x", body=json.dumps(body))


def test_a_refusal_names_the_verb_the_resource_and_the_namespace() -> None:
    message = 'pods is forbidden: User "bob" cannot create resource "pods" in API group "" in the namespace "apps"'
    found = failure(api_error(403, message), SERVER, Call("create", PODS, "apps", "web-1-disk-sink"))
    assert isinstance(found, PermanentError) and found.code == "forbidden"
    assert f"may not create pods in namespace 'apps' on the API server at {SERVER}" in found.message
    assert message in found.message
    assert "grant it create on pods in that namespace" in found.message


def test_an_invalid_object_carries_the_apiservers_reason() -> None:
    reason = 'PersistentVolumeClaim "x" is invalid: spec.storageClassName: Invalid value: "Not_A_Class"'
    found = failure(api_error(422, reason), SERVER, Call("create", PVCS, "apps", "x"))
    assert isinstance(found, PermanentError) and found.code == "invalid_object"
    assert found.message == f"the API server at {SERVER} rejected PersistentVolumeClaim apps/x: {reason}"


def test_a_missing_namespace_and_a_missing_api_are_told_apart() -> None:
    namespace = failure(api_error(404, 'namespaces "apps" not found', kind="namespaces", name="apps"),
                        SERVER, Call("create", PVCS, "apps", "x"))  # fmt: skip
    assert (namespace.code, type(namespace)) == ("namespace_missing", PermanentError)
    assert "namespace 'apps' does not exist" in namespace.message
    api = failure(api_error(404, "the server could not find the requested resource"), SERVER,
                  Call("create", DATA_VOLUMES, "apps", "x"))  # fmt: skip
    assert api.code == "api_missing"
    assert "does not serve datavolumes.cdi.kubevirt.io; install CDI on it" in api.message


@pytest.mark.parametrize("status", [409, 429, 500, 503])
def test_a_busy_server_is_asked_again(status: int) -> None:
    found = failure(api_error(status, "etcdserver: request timed out"), SERVER, Call("get", PODS, "apps", "p"))
    assert isinstance(found, TemporaryError) and found.code == "api_busy"
    assert f"answered {status} to get Pod apps/p: etcdserver: request timed out" in found.message


def test_a_refused_connection_is_temporary_and_names_the_server() -> None:
    refused = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    error = MaxRetryError(None, "/api/v1/namespaces/apps/pods", reason=refused)  # type: ignore[arg-type]
    found = failure(error, SERVER, Call("create", PODS, "apps", "p"))
    assert isinstance(found, TemporaryError) and found.code == "unreachable"
    assert f"cannot reach the API server at {SERVER}" in found.message


def test_an_untrusted_certificate_and_bad_credentials_are_permanent() -> None:
    tls = ApiException(status=0, reason="SSLError\n[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    untrusted = failure(tls, SERVER, Call("create", PODS, "apps", "p"))
    assert isinstance(untrusted, PermanentError) and untrusted.code == "certificate_untrusted"
    unauthorized = failure(api_error(401, "Unauthorized"), SERVER, Call("create", PODS, "apps", "p"))
    assert isinstance(unauthorized, PermanentError) and unauthorized.code == "unauthorized"
