"""How the inventory's Kubernetes watcher words a target's failures: a busy API server (429,
a watch cache re-initializing, 5xx) keeps the provider connecting while Ferry tries again;
other answers are errors the owner must act on."""

import pytest
from kubernetes.client.exceptions import ApiException

from ferry_shared.kubernetes.failures import TargetBusyError, classify
from ferry_shared.providers import ProviderPhase

SERVER = "https://cluster.example:6443"


def answer(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="x")
    error.body = f'{{"kind": "Status", "message": "{message}"}}'
    return error


@pytest.mark.parametrize("status", [429, 500, 503, 504])
def test_a_busy_api_server_leaves_the_provider_connecting(status: int) -> None:
    found = classify(answer(status, "storage is (re)initializing"), SERVER, "watching storageprofiles")
    assert isinstance(found, TargetBusyError)
    assert found.status().phase == ProviderPhase.CONNECTING and found.status().reason == "api_busy"
    assert f"answered {status} while watching storageprofiles: storage is (re)initializing" in found.message


@pytest.mark.parametrize(("status", "reason"), [(401, "unauthorized"), (403, "forbidden"), (404, "api_error")])
def test_other_answers_are_errors(status: int, reason: str) -> None:
    found = classify(answer(status, "no"), SERVER, "listing namespaces")
    assert not isinstance(found, TargetBusyError)
    assert found.status().phase == ProviderPhase.ERROR and found.status().reason == reason
