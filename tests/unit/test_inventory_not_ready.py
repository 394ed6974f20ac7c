"""Queries on a provider that is not ready: the inventory API answers 409
``provider_not_ready`` with the provider's state and error, never an empty list, and
``ferry inventory`` turns that into one line and exit 1 (the real API app over its own
:class:`InventoryIndex`, served on a loopback port for the CLI)."""

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from ferry_cli import main
from ferry_cli.client import CliError
from ferry_inventory.domain.index import InventoryIndex
from ferry_inventory.entrypoints.http_api import install
from ferry_shared.api_auth.guard import ApiGuard
from ferry_shared.api_auth.local_token import LocalTokenAuthenticator
from ferry_shared.credentials import Secret
from ferry_shared.health import health_app
from ferry_shared.inventory import NetworkRecord, VmRecord
from ferry_shared.providers import ProviderPhase, ProviderStatus
from ferry_testpeers.waiting import wait_for

WRONG_PASSWORD = ProviderStatus(
    phase=ProviderPhase.ERROR,
    reason="invalid_login",
    message="vCenter refused the user name or password; check them",
)
TOKEN = "token-of-the-not-ready-tests"
QUERIES = ["/api/v1/providers/vc/vms", "/api/v1/providers/vc/networks", "/api/v1/providers/vc/vms/vm-1"]


def inventory_app(status: ProviderStatus | None) -> FastAPI:
    index = InventoryIndex()
    index.replace_all("vc", [("vm", VmRecord(id="vm-1", name="web-01")), ("network", NetworkRecord(id="n", name="n"))])
    if status is not None:
        index.set_status("vc", status)
    app = health_app("inventory", {}, ApiGuard(LocalTokenAuthenticator(Secret(TOKEN))))
    install(app, index)
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ferry.test", headers=headers)


@pytest.mark.parametrize("path", QUERIES)
async def test_a_provider_in_error_answers_409_with_its_reason_and_message(path: str) -> None:
    async with client(inventory_app(WRONG_PASSWORD)) as http:
        response = await http.get(path)
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"reason", "message"}
    assert body["reason"] == "provider_not_ready"
    assert "provider 'vc' is in error (invalid_login): vCenter refused the user name or password" in body["message"]


@pytest.mark.parametrize(
    "status", [None, ProviderStatus(phase=ProviderPhase.CONNECTING)], ids=["unknown", "connecting"]
)
async def test_a_provider_still_connecting_answers_409_saying_so(status: ProviderStatus | None) -> None:
    async with client(inventory_app(status)) as http:
        response = await http.get("/api/v1/providers/vc/vms")
    assert response.status_code == 409
    assert response.json()["reason"] == "provider_not_ready"
    assert "provider 'vc' is still connecting" in response.json()["message"]


async def test_a_ready_provider_answers_its_inventory_and_an_unknown_one_404() -> None:
    async with client(inventory_app(ProviderStatus(phase=ProviderPhase.READY))) as http:
        listed = await http.get("/api/v1/providers/vc/vms")
        unknown = await http.get("/api/v1/providers/other/vms")
    assert listed.status_code == 200 and listed.json()["total"] == 1
    assert unknown.status_code == 404


def test_the_openapi_document_lists_the_409_of_every_query() -> None:
    app = inventory_app(None)
    paths = app.openapi()["paths"]
    for path in ("/api/v1/providers/{provider}/vms", "/api/v1/providers/{provider}/{kind_path}",
                 "/api/v1/providers/{provider}/{kind_path}/{identifier}"):  # fmt: skip
        answer = paths[path]["get"]["responses"]["409"]
        assert "provider_not_ready" in answer["description"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def inventory_in_error(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The inventory API of a provider in error, on a loopback port the CLI is pointed at."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(inventory_app(WRONG_PASSWORD), log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10, what="the inventory API to listen")
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setenv("FERRY_INVENTORY_URL", url)
        monkeypatch.setenv("FERRY_TOKEN", TOKEN)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.mark.parametrize("command", [["vms", "vc"], ["networks", "vc"], ["vm", "vc", "web-01"]])
def test_ferry_inventory_on_a_provider_in_error_exits_1_with_one_line(
    inventory_in_error: str, command: list[str]
) -> None:
    result = CliRunner().invoke(main.typer_app, ["inventory", *command])
    assert result.exit_code == 1
    assert isinstance(result.exception, CliError)
    line = str(result.exception)
    assert "\n" not in line
    assert "provider 'vc' is in error (invalid_login): vCenter refused the user name or password" in line
    assert "`ferry provider show vc`" in line
    assert "0 VMs" not in result.output
