"""The transfer's way into vSphere without a password, against the real inventory process,
NATS and the simulator: one-time clone tickets that only the transfer identity may ask for."""

from pathlib import Path

import pytest
from nats.errors import NoRespondersError

from ferry_peers.inventory_desk import inventory_desk
from ferry_peers.nats_server import NatsServer
from ferry_peers.vcsim import Vcsim
from ferry_shared import subjects
from ferry_shared.bus.connection import connect
from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus
from ferry_shared.source_sessions import SourceSessionRequest, encode_request
from ferry_shared.vsphere.errors import INVALID_LOGIN, ProviderError
from ferry_testpeers.plugin import VcsimFactory
from ferry_transfer.adapters.source_sessions import LoginTimeouts, vsphere_clone_login
from ferry_transfer.adapters.source_tickets import InventoryTickets

pytestmark = [pytest.mark.nats, pytest.mark.vsphere]


def provider(simulator: Vcsim) -> ProviderSpec:
    return ProviderSpec(
        name="vc",
        type="vsphere",
        url=simulator.sdk_url,
        username=simulator.username,
        ca_bundle=simulator.certificate_path.read_text(),
    )


async def test_a_ticket_opens_one_session_of_the_transfers_own_and_only_once(
    bus: Bus, nats_server: NatsServer, vcsim_factory: VcsimFactory, tmp_path: Path
) -> None:
    simulator = vcsim_factory()
    spec = provider(simulator)
    async with inventory_desk(bus, nats_server, spec, Secret(simulator.password), tmp_path / "inventory") as inventory:
        transfer = await connect(nats_server.url, name="transfer", **nats_server.connect_options(subjects.TRANSFER))
        try:
            tickets = InventoryTickets(transfer, timeout=30, worker="test-worker:1")
            ticket = await tickets.get("vc")
            login = vsphere_clone_login(LoginTimeouts())(spec, ticket)
            try:
                assert login.session.content.about.apiType == "VirtualCenter"
                assert login.session.content.sessionManager.currentSession.userName.lower().startswith("administrator")
            finally:
                login.session.close()
            with pytest.raises(ProviderError) as reused:
                vsphere_clone_login(LoginTimeouts())(spec, ticket)
            assert reused.value.reason == INVALID_LOGIN and "refused the clone ticket" in reused.value.message

            second = await tickets.get("vc")
            assert second.reveal() != ticket.reveal()
            with pytest.raises(ProviderError) as unknown:
                await tickets.get("not-added")
            assert unknown.value.reason == "provider_unknown" and "ferry provider add" in unknown.value.message
        finally:
            await transfer.close()
        log = inventory.process.log_path.read_text()
        assert "issued a clone ticket of provider vc to test-worker:1 (login)" in log
        assert "(renewal)" in log
        assert ticket.reveal() not in log and second.reveal() not in log and simulator.password not in log


@pytest.mark.parametrize("identity", [subjects.PLANNER, subjects.KUBEVIRT_WRITER])
async def test_no_other_service_may_ask_for_a_ticket(
    bus: Bus, nats_server: NatsServer, vcsim_factory: VcsimFactory, tmp_path: Path, identity: str
) -> None:
    simulator = vcsim_factory()
    async with inventory_desk(bus, nats_server, provider(simulator), Secret(simulator.password), tmp_path / "inv"):
        other = await connect(nats_server.url, name=identity, **nats_server.connect_options(identity))
        try:
            request = encode_request(SourceSessionRequest(provider="vc", worker=identity))
            with pytest.raises((TimeoutError, NoRespondersError)):  # the server drops the publish
                await other.request(subjects.SOURCE_SESSION_RPC, request, timeout=2)
        finally:
            await other.close()
