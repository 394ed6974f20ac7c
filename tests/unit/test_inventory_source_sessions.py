"""The inventory's answers to source_session requests, with fakes behind its ports."""

import logging

import pytest

from ferry_inventory.source_session_answers import answer_source_session
from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderConnection, ProviderSpec
from ferry_shared.source_sessions import (
    SourceSessionRefused,
    SourceSessionRequest,
    SourceTicket,
    decode_answer,
    encode_request,
)
from ferry_shared.vsphere.errors import INVALID_LOGIN, ProviderError

PASSWORD = "S3cret-Inventory-Only"
SPEC = ProviderSpec(name="vc", type="vsphere", url="https://vc.example.com/sdk", username="admin")


class Connections:
    def __init__(self, *specs: ProviderSpec) -> None:
        self.specs = {spec.name: spec for spec in specs}

    async def get(self, provider: str) -> ProviderConnection | None:
        spec = self.specs.get(provider)
        return ProviderConnection(provider=spec, generation=1) if spec else None


class Credentials:
    def __init__(self, **secrets: str) -> None:
        self.secrets = secrets

    async def get(self, provider: str) -> Secret | None:
        value = self.secrets.get(provider)
        return Secret(value) if value is not None else None


class Tickets:
    def __init__(self, failure: ProviderError | None = None) -> None:
        self.failure = failure
        self.asked: list[tuple[ProviderSpec, str]] = []

    async def issue(self, spec: ProviderSpec, password: Secret) -> Secret:
        self.asked.append((spec, password.reveal()))
        if self.failure:
            raise self.failure
        return Secret(f"cst-{len(self.asked)}")


async def ask(data: bytes, *, tickets: Tickets, connections: Connections | None = None, **secrets: str) -> object:
    answer = await answer_source_session(
        data,
        connections=connections or Connections(SPEC),
        credentials=Credentials(**(secrets or {"vc": PASSWORD})),
        tickets=tickets,
    )
    return decode_answer(answer)


def request(provider: str = "vc") -> bytes:
    return encode_request(SourceSessionRequest(provider=provider, worker="worker-1:42", purpose="login"))


async def test_a_ticket_is_issued_with_the_inventorys_own_settings_and_audited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tickets = Tickets()
    with caplog.at_level(logging.INFO, logger="ferry.audit"):
        answer = await ask(request(), tickets=tickets)
    assert isinstance(answer, SourceTicket)
    assert answer.ticket.reveal() == "cst-1" and answer.url == SPEC.url
    assert tickets.asked == [(SPEC, PASSWORD)]
    assert "cst-1" not in repr(answer)
    assert "issued a clone ticket of provider vc to worker-1:42 (login)" in caplog.text
    assert "cst-1" not in caplog.text and PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("data", "connections", "secrets", "reason", "says"),
    [
        (b"{not json", None, {}, "bad_request", "not a source_session request"),
        (request("other"), None, {}, "provider_unknown", "no vSphere provider named 'other'"),
        (
            request("k8s"),
            Connections(ProviderSpec(name="k8s", type="kubernetes", url="https://k8s:6443")),
            {},
            "provider_unknown",
            "no vSphere provider named 'k8s'",
        ),
        (request(), None, {"unrelated": "x"}, "provider_not_ready", "no password is stored for provider 'vc'"),
    ],
)
async def test_requests_that_cannot_have_a_ticket_are_refused_saying_why(
    data: bytes, connections: Connections | None, secrets: dict[str, str], reason: str, says: str
) -> None:
    tickets = Tickets()
    answer = await ask(data, tickets=tickets, connections=connections, **secrets)
    assert isinstance(answer, SourceSessionRefused)
    assert answer.reason == reason and says in answer.message
    assert tickets.asked == []


async def test_a_failed_login_is_refused_with_the_vsphere_reason_and_no_password() -> None:
    failure = ProviderError(INVALID_LOGIN, "vCenter at vc.example.com refused the user name 'admin' or its password")
    answer = await ask(request(), tickets=Tickets(failure))
    assert isinstance(answer, SourceSessionRefused)
    assert (answer.reason, answer.login_reason) == ("login_failed", INVALID_LOGIN)
    assert "refused the user name 'admin'" in answer.message and PASSWORD not in answer.message
