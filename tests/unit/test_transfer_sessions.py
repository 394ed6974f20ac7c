"""The transfer's per-provider login cache, with a fake login behind its port; and its settings."""

import asyncio
import ssl
import threading
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.endpoint import Endpoint
from ferry_shared.vsphere.errors import ProviderError
from ferry_shared.vsphere.session import Session
from ferry_transfer.adapters.sinks import RawFileSink
from ferry_transfer.adapters.source_sessions import SourceLogin, SourceSessions
from ferry_transfer.settings import TransferSettings

SPEC = ProviderSpec(name="vc", type="vsphere", url="https://vc.example.com/sdk", username="u")


class FakeStub:
    def __init__(self, cookie: str) -> None:
        self.cookie = cookie


class FakeService:
    def __init__(self, cookie: str) -> None:
        self._stub = FakeStub(cookie)


class FakeSession:
    def __init__(self, number: int) -> None:
        self.service = FakeService(f'vmware_soap_session="session-{number}"')
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


class Logins:
    def __init__(self) -> None:
        self.made: list[FakeSession] = []
        self.tickets: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, spec: ProviderSpec, ticket: Secret) -> SourceLogin:
        with self.lock:
            session = FakeSession(len(self.made) + 1)
            self.made.append(session)
            self.tickets.append(ticket.reveal())
        context = ssl.create_default_context()
        return SourceLogin(spec, Endpoint("vc.example.com"), context, "", cast(Session, session))


class Tickets:
    """The inventory's side: a new one-time ticket per request, for the providers it knows."""

    def __init__(self, *providers: str) -> None:
        self.providers = providers
        self.issued = 0

    async def get(self, provider: str) -> Secret:
        if provider not in self.providers:
            raise ProviderError("provider_unknown", f"the inventory keeps no vSphere provider named '{provider}'")
        self.issued += 1
        return Secret(f"ticket-{self.issued}")


def fake(login: SourceLogin) -> Any:
    return login.session


async def test_copies_share_one_login_per_provider() -> None:
    logins = Logins()
    sessions = SourceSessions(Tickets("vc"), logins)
    first, second, third = await asyncio.gather(*(sessions.get(SPEC) for _ in range(3)))
    assert first is second is third
    assert len(logins.made) == 1 and logins.tickets == ["ticket-1"]
    assert first.cookie == 'vmware_soap_session="session-1"'
    assert first.host == "vc.example.com:443"


async def test_a_refused_session_is_renewed_once_for_all_copies_and_the_old_one_logged_out() -> None:
    logins = Logins()
    sessions = SourceSessions(Tickets("vc"), logins)
    stale = await sessions.get(SPEC)
    renewed = await asyncio.gather(sessions.renew(stale), sessions.renew(stale))
    assert renewed[0] is renewed[1] is not stale
    assert len(logins.made) == 2 and logins.tickets == ["ticket-1", "ticket-2"]  # a ticket is used once
    assert await sessions.get(SPEC) is renewed[0]
    await asyncio.to_thread(fake(stale).closed.wait, 5)
    await sessions.close_all()
    assert fake(renewed[0]).closed.is_set()


async def test_changed_provider_settings_log_in_again() -> None:
    logins = Logins()
    sessions = SourceSessions(Tickets("vc"), logins)
    old = await sessions.get(SPEC)
    new = await sessions.get(ProviderSpec(name="vc", type="vsphere", url="https://vc2.example.com", username="u"))
    assert new is not old and len(logins.made) == 2


async def test_a_refused_ticket_is_the_copys_error_and_no_login_is_tried() -> None:
    logins = Logins()
    sessions = SourceSessions(Tickets(), logins)
    with pytest.raises(ProviderError) as caught:
        await sessions.get(SPEC)
    assert caught.value.reason == "provider_unknown" and "provider named 'vc'" in caught.value.message
    assert logins.made == []


def test_settings_come_from_the_environment_with_their_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_TRANSFER_RANGES_IN_FLIGHT", "4")
    monkeypatch.setenv("FERRY_TRANSFER_RANGE_SIZE", str(32 * 1024 * 1024))
    monkeypatch.setenv("FERRY_TRANSFER_CONNECTIONS_PER_HOST", "12")
    monkeypatch.setenv("FERRY_TRANSFER_PROGRESS_INTERVAL", "1.5")
    settings = TransferSettings()
    assert (settings.ranges_in_flight, settings.range_size, settings.progress_interval) == (4, 32 << 20, 1.5)
    assert settings.connections_per_host == 12
    assert TransferSettings.model_fields["range_size"].default == 16 << 20


@pytest.mark.parametrize("field", ["range_size", "chunk_size"])
def test_sizes_off_the_64k_grid_are_refused(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} must be a multiple of 65536"):
        TransferSettings.model_validate({field: 5000 * 1024})


async def test_a_raw_file_punches_holes_for_zeroes_and_checks_them_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(b"stale" * 100)
    with RawFileSink(path, 256 * 1024) as sink:
        assert await sink.read(0, 5) == bytes(5)  # opened afresh: all hole
        await sink.write(0, b"\xff" * 8192)
        assert not await sink.reads_zero(0, 65536)
        await sink.zero(0, 4096)
        assert await sink.read(0, 8192) == bytes(4096) + b"\xff" * 4096
        await sink.finish()
        assert await sink.reads_zero(0, 4096) and await sink.reads_zero(8192, 200 * 1024)
    with RawFileSink(path, 256 * 1024, fresh=False) as again:  # a range worker's view: nothing truncated
        assert await again.read(4096, 4) == b"\xff" * 4
        await again.zero(0, 64 * 1024)
        assert await again.reads_zero(0, 256 * 1024)
    assert path.stat().st_size == 256 * 1024 and path.stat().st_blocks == 0
    with pytest.raises(FileNotFoundError):
        RawFileSink(tmp_path / "missing.raw", 1024, fresh=False)
