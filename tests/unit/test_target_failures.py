"""How the inventory's Kubernetes watcher words a target's failures: a busy API server (429,
a watch cache re-initializing, 5xx) keeps the provider connecting while Ferry tries again;
other answers are errors the owner must act on."""

import pytest
from kubernetes.client.exceptions import ApiException

from ferry_inventory.adapters.kubernetes.watcher import BUSY_TRIES, reported_status
from ferry_shared.kubernetes.failures import TargetBusyError, classify
from ferry_shared.providers import ProviderPhase

SERVER = "https://cluster.example:6443"


def answer(status: int, message: str, *, retry_after: int = 0) -> ApiException:
    error = ApiException(status=status, reason="x")
    details = f', "details": {{"retryAfterSeconds": {retry_after}}}' if retry_after else ""
    error.body = f'{{"kind": "Status", "message": "{message}"{details}}}'
    return error


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_busy_api_server_leaves_the_provider_connecting(status: int) -> None:
    found = classify(answer(status, "storage is (re)initializing"), SERVER, "watching storageprofiles")
    assert isinstance(found, TargetBusyError)
    assert found.status().phase == ProviderPhase.CONNECTING and found.status().reason == "api_busy"
    assert f"answered {status} while watching storageprofiles: storage is (re)initializing" in found.message


def test_a_500_is_busy_only_when_it_asks_to_be_retried() -> None:
    assert isinstance(classify(answer(500, "try later", retry_after=1), SERVER, "listing pods"), TargetBusyError)
    broken = classify(answer(500, "the aggregated API is broken"), SERVER, "listing pods")
    assert not isinstance(broken, TargetBusyError) and broken.status().phase == ProviderPhase.ERROR


@pytest.mark.parametrize(("status", "reason"), [(401, "unauthorized"), (403, "forbidden"), (404, "api_error")])
def test_other_answers_are_errors(status: int, reason: str) -> None:
    found = classify(answer(status, "no"), SERVER, "listing namespaces")
    assert not isinstance(found, TargetBusyError)
    assert found.status().phase == ProviderPhase.ERROR and found.status().reason == reason


def test_a_server_busy_for_long_makes_the_provider_an_error() -> None:
    busy = classify(answer(429, "too many requests"), SERVER, "watching pods")
    assert [reported_status(busy, tries).phase for tries in (1, BUSY_TRIES, BUSY_TRIES + 1)] == [
        ProviderPhase.CONNECTING, ProviderPhase.CONNECTING, ProviderPhase.ERROR]  # fmt: skip
    assert reported_status(busy, BUSY_TRIES + 1).message == busy.message
