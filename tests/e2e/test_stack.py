"""The four services as separate processes: ready, observable, and stopping cleanly."""

import json
from pathlib import Path

import httpx
import pytest

from ferry_peers.nats_server import NatsServer
from ferry_peers.security import API_TOKEN_SERVICES
from ferry_peers.services import SERVICE_MODULES, start_service

pytestmark = [pytest.mark.e2e, pytest.mark.nats]


def test_every_service_starts_serves_health_and_drains_on_sigterm(nats_server: NatsServer, tmp_path: Path) -> None:
    services = {}
    try:
        for name in SERVICE_MODULES:
            services[name] = start_service(name, nats_server, tmp_path)
        for name, service in services.items():
            ready = httpx.get(f"{service.http_url}/readyz", timeout=5)
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "service": name, "failing": {}}
            guarded = name in API_TOKEN_SERVICES  # the others have no API of their own
            headers = nats_server.security.api_headers() if guarded else {}
            for path in ("/metrics", "/openapi.json", "/docs"):
                if guarded:
                    assert httpx.get(f"{service.http_url}{path}", timeout=5).status_code == 401, path
                assert httpx.get(f"{service.http_url}{path}", headers=headers, timeout=5).status_code == 200, path
            metrics = httpx.get(f"{service.http_url}/metrics", headers=headers, timeout=5)
            assert "process_cpu_seconds_total" in metrics.text
    finally:
        exit_codes = {name: service.process.stop(timeout=20) for name, service in services.items()}
    assert exit_codes == dict.fromkeys(SERVICE_MODULES, 0), "SIGTERM drains and exits 0"
    for name in SERVICE_MODULES:
        lines = (tmp_path / "logs" / f"{name}.log").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        assert {"time", "level", "service", "logger", "message"} <= records[0].keys()
        assert records[-1]["message"] == f"{name} stopped"
