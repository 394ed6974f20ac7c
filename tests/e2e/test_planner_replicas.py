"""Two planner replicas as processes: either serves the API and the event stream, one runs
the migrations, and a SIGKILL of that one hands over to the other with no VM stuck."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ferry_peers.nats_server import NatsServer
from ferry_peers.processes import stop_all
from ferry_peers.services import ServiceProcess, start_service
from ferry_shared import subjects
from ferry_shared.bus.connection import connect
from ferry_testpeers.models import migration_model
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import wait_for

from .harness import EventLog, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.nats, pytest.mark.vsphere]

VMS = ("web-01", "app-02")
LEASE = {"FERRY_PLANNER_LEASE_TTL": "3", "FERRY_PLANNER_LEASE_RENEW_EVERY": "1"}
HANDOVER_LIMIT = 10.0
SLOW_READ_MS = 1500


@pytest.fixture
def replicas(
    nats_server: NatsServer, vcsim_factory: VcsimFactory, tmp_path: Path
) -> Iterator[tuple[Stack, ServiceProcess]]:
    """The stack with planner ``a`` (started first: it holds the lease) and planner ``b``,
    whose API the stack's CLI and requests use."""
    simulator = vcsim_factory(model=migration_model())
    services: dict[str, ServiceProcess] = {}
    try:
        for name in ("inventory", "transfer", "kubevirt-writer"):
            services[name] = start_service(name, nats_server, tmp_path)
        active = start_service("planner", nats_server, tmp_path, replica="a",
                               env={**LEASE, "FERRY_PLANNER_REPLICA_NAME": "planner-a"})  # fmt: skip
        services["planner-a"] = active
        services["planner"] = start_service("planner", nats_server, tmp_path, replica="b",
                                            env={**LEASE, "FERRY_PLANNER_REPLICA_NAME": "planner-b"})  # fmt: skip
        yield Stack(nats_server, simulator, services, tmp_path), active
    finally:
        stop_all(service.process for service in services.values())


def lease_holder(nats: NatsServer) -> str:
    async def read() -> str:
        nc = await connect(nats.url, name="ferry-test-lease", **nats.connect_options())
        try:
            kv = await nc.jetstream().key_value(subjects.PLANNER_BUCKET)
            entry = await kv.get("lease.active")
            return str(msgspec.json.decode(entry.value or b"{}").get("holder", ""))
        finally:
            await nc.close()

    return asyncio.run(read())


def vm_phases(stack: Stack, service: ServiceProcess) -> dict[str, str]:
    migration: dict[str, Any] = stack.get(service, "/migrations/p1-1")
    return {vm["vm_name"]: vm["phase"] for vm in migration["vms"]}


def test_a_standby_serves_the_api_and_takes_over_when_the_active_planner_is_killed(
    replicas: tuple[Stack, ServiceProcess], tmp_path: Path
) -> None:
    stack, active = replicas
    assert lease_holder(stack.nats) == "planner-a"
    events = EventLog(f"{stack.planner.http_url}/api/v1/events", stack.security.api_headers())  # the standby's stream
    assert stack.add_vcenter("vcenter", password=stack.vcsim.password,
                             thumbprint=stack.vcsim.thumbprint_sha256).returncode == 0  # fmt: skip
    stack.ok("provider", "add", "target", "--type", "local", "--path", str(tmp_path / "target"))
    stack.wait_provider("vcenter", "ready")
    stack.wait_provider("target", "ready")
    stack.ok("map", "network", "create", "net", "--source", "vcenter", "--target", "target",
             "--pair", "VM Network=pod", "--pair", "DC0_DVPG0=pod")  # fmt: skip
    stack.ok("map", "storage", "create", "sto", "--source", "vcenter", "--target", "target",
             "--pair", "LocalDS_0=standard", "--pair", "LocalDS_1=standard")  # fmt: skip
    stack.ok("plan", "create", "p1", "--source", "vcenter", "--target", "target", "--network-map", "net",
             "--storage-map", "sto", "--namespace", "default", *[a for vm in VMS for a in ("--vm", vm)])  # fmt: skip
    for vm in VMS:
        rule = {"path": f"{vm}-flat.vmdk", "delay_ms": SLOW_READ_MS}
        httpx.post(f"{stack.vcsim.control_url}/faults", json=rule, timeout=10).raise_for_status()

    stack.ok("migrate", "p1", "--detach")  # through the standby's API

    def copying() -> bool | None:
        return all(phase == "CopyDisks" for phase in vm_phases(stack, active).values()) or None

    wait_for(copying, timeout=60, what="both VMs to be copying")
    assert vm_phases(stack, stack.planner) == vm_phases(stack, active), "both replicas show the same state"
    active.process.kill()
    killed = time.monotonic()
    wait_for(lambda: lease_holder(stack.nats) == "planner-b" or None, timeout=HANDOVER_LIMIT + 5,
             what="the standby to take the lease")  # fmt: skip
    handover = time.monotonic() - killed
    assert handover < HANDOVER_LIMIT, f"handover took {handover:.1f} s"

    migration = wait_for(
        lambda: m if (m := stack.get(stack.planner, "/migrations/p1-1"))["phase"] != "Running" else None,
        timeout=120,
        what="the migration to end on the standby",
    )
    assert {vm["vm_name"]: vm["phase"] for vm in migration["vms"]} == dict.fromkeys(VMS, "Completed"), [
        (vm["vm_name"], vm["phase"], vm["reason"]) for vm in migration["vms"]
    ]
    assert any(e["kind"] == "migration_vm" and e["vm"]["phase"] == "Completed" for e in events.of_kind("migration_vm"))
    print(f"\nhandover after SIGKILL of the active planner: {handover:.1f} s")
