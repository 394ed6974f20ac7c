"""Why a call to a target cluster failed, as a permanent or temporary error that names
the call (verb, resource, namespace, object) and what to do.

Called by :mod:`.objects` and :mod:`.pod_watch` for every failed request. Messages come
only from safe parts: the server URL, the call, the HTTP status and the API server's
own ``Status`` message; never the kubeconfig.
"""

import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ferry_kubevirt_writer.adapters.kubernetes.resources import Resource
from ferry_shared.errors import FerryError, PermanentError, TemporaryError
from ferry_shared.kubernetes.failures import UNREACHABLE, classify, status_message

RETRY_DELAY = 5.0
UNREACHABLE_DELAY = 10.0


@dataclass(frozen=True)
class Call:
    """One request: ``verb`` as RBAC names it (create, get, list, watch, delete)."""

    verb: str
    resource: Resource
    namespace: str
    name: str = ""

    def target(self) -> str:
        if self.name:
            return f"{self.resource.kind} {self.namespace}/{self.name}"
        return f"{self.resource.display} in namespace '{self.namespace}'"


def _details(error: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(error.body or "")
    except ValueError:
        return {}
    details = body.get("details") if isinstance(body, dict) else None
    return details if isinstance(details, dict) else {}


def _not_found(error: ApiException, server: str, call: Call) -> FerryError:
    details = _details(error)
    if details.get("kind") == "namespaces":
        return PermanentError(
            "namespace_missing",
            f"namespace '{call.namespace}' does not exist on the cluster at {server}; "
            "create it or choose another target namespace",
        )
    if call.resource.provided_by and not details:
        return PermanentError(
            "api_missing",
            f"the cluster at {server} does not serve {call.resource.display}; install "
            f"{call.resource.provided_by} on it",
        )
    return PermanentError("not_found", f"{call.verb} {call.target()} on {server}: {status_message(error)}")


def _api_failure(error: ApiException, server: str, call: Call) -> FerryError:
    status, detail = error.status or 0, status_message(error)
    if status == 0:  # the client wraps TLS failures so
        return _transport_failure(detail, server)
    if status == 401:
        return PermanentError(
            "unauthorized",
            f"the API server at {server} rejected the kubeconfig's credentials (401 Unauthorized); "
            "provide a current kubeconfig for the target provider",
        )
    if status == 403:
        return PermanentError(
            "forbidden",
            f"the kubeconfig's user may not {call.verb} {call.resource.display} in namespace '{call.namespace}' "
            f"on the API server at {server} ({detail}); grant it {call.verb} on {call.resource.display} in that "
            "namespace (the Helm chart's kubevirt-writer Role lists everything the writer needs)",
        )
    if status == 404:
        return _not_found(error, server, call)
    if status == 422:
        return PermanentError("invalid_object", f"the API server at {server} rejected {call.target()}: {detail}")
    if status in (409, 429) or status >= 500:
        return TemporaryError(
            "api_busy",
            f"the API server at {server} answered {status} to {call.verb} {call.target()}: {detail}",
            delay=RETRY_DELAY,
        )
    return PermanentError(
        "api_error", f"the API server at {server} answered {status} to {call.verb} {call.target()}: {detail}"
    )


def _transport_failure(detail: str, server: str) -> FerryError:
    if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail:
        return PermanentError(
            "certificate_untrusted",
            f"the certificate of the API server at {server} is not trusted; put the cluster's CA in the "
            "kubeconfig (certificate-authority-data) or check that the server name matches",
        )
    return TemporaryError(
        UNREACHABLE, f"the TLS connection to the API server at {server} failed ({detail})", delay=UNREACHABLE_DELAY
    )


def failure(error: ApiException | HTTPError | OSError, server: str, call: Call) -> FerryError:
    """The error a failed ``call`` to ``server`` means: unreachable servers and busy ones
    are temporary; refusals, invalid objects and missing APIs are permanent."""
    if isinstance(error, ApiException):
        return _api_failure(error, server, call)
    found = classify(error, server, f"{call.verb} {call.target()}")
    if found.code == UNREACHABLE:
        return TemporaryError(found.code, found.message, delay=UNREACHABLE_DELAY)
    return PermanentError(found.code, found.message)
