"""The part of ``ferry demo`` that connects the simulated vCenter and a local target,
maps them and plans every simulated VM — stages 1 and 2 on embedded defaults."""

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ferry_cli.client import ApiClient, CliError
from ferry_cli.local.stack import LocalStack
from ferry_cli.output import OutputFormat, emit

SOURCE, TARGET = "demo-vcenter", "demo-local"


def _wait_ready(planner: ApiClient, name: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = planner.get(f"/providers/{name}")["status"]
        if status["phase"] == "ready":
            return status
        if status["phase"] == "error" or time.monotonic() > deadline:
            raise CliError(f"provider {name} did not become ready: {status['message'] or status['phase']}")
        time.sleep(0.2)


def plan_everything(stack: LocalStack, target_dir: Path, console: Console) -> None:
    """Add both providers, map the simulator's networks and datastores, plan all VMs."""
    planner = ApiClient(stack.services["planner"].http_url, "planner", "FERRY_PLANNER_URL")
    inventory = ApiClient(stack.services["inventory"].http_url, "inventory service", "FERRY_INVENTORY_URL")
    simulator = stack.vcsim
    planner.post("/providers", {
        "name": SOURCE, "type": "vsphere", "url": simulator.sdk_url, "username": simulator.username,
        "password": simulator.password, "thumbprint": simulator.thumbprint_sha256,
    })  # fmt: skip
    planner.post("/providers", {"name": TARGET, "type": "local", "path": str(target_dir)})
    counts = _wait_ready(planner, SOURCE)["counts"]
    _wait_ready(planner, TARGET)
    console.print(f"source {SOURCE} ready: " + ", ".join(f"{v} {k}s" for k, v in sorted(counts.items())))

    vms = inventory.get(f"/providers/{SOURCE}/vms")["items"]
    networks = inventory.get(f"/providers/{SOURCE}/networks")["items"]
    datastores = inventory.get(f"/providers/{SOURCE}/datastores")["items"]
    ends = {"source_provider": SOURCE, "target_provider": TARGET}
    network_pairs = [{"source": n["name"], "destination": "pod" if n["name"] == "VM Network" else "ignored"}
                     for n in networks]  # fmt: skip
    planner.post("/networkmaps", {"name": "demo-networks", **ends, "pairs": network_pairs})
    storage_pairs = [{"source": d["name"], "storage_class": "local"} for d in datastores]
    planner.post("/storagemaps", {"name": "demo-storage", **ends, "pairs": storage_pairs})
    plan = planner.post("/plans", {
        "name": "demo", **ends, "network_map": "demo-networks", "storage_map": "demo-storage",
        "target_namespace": "default", "vms": [{"ref": vm["id"]} for vm in vms],
    })  # fmt: skip
    rows = [
        {
            "vm": v["name"],
            "target": v["target_name"],
            "concerns": [f"{c['category']}: {c['label']}" for c in v["concerns"]],
        }
        for v in plan["status"]["vms"]
    ]
    emit(rows, OutputFormat.TABLE, [("VM", lambda r: r["vm"]), ("TARGET NAME", lambda r: r["target"]),
                                    ("CONCERNS", lambda r: r["concerns"])], title="plan demo")  # fmt: skip
    console.print(f"plan demo is {'Ready' if plan['status']['ready'] else 'not Ready'}")
