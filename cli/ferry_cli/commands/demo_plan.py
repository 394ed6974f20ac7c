"""The part of ``ferry demo`` that connects the simulated vCenter and a local target,
maps them and plans every simulated VM — stages 1 and 2 on embedded defaults."""

import time
from typing import Any

from rich.console import Console

from ferry_cli.client import PLANNER_URL_ENV, ApiClient, CliError
from ferry_cli.follow.http_planner import HttpChangeFeed
from ferry_cli.follow.ports import StreamLostError
from ferry_cli.local.stack import LocalStack
from ferry_cli.output import OutputFormat, emit

SOURCE, TARGET, PLAN = "demo-vcenter", "demo-local", "demo"
READY_TIMEOUT = 60.0


def _wait_ready(planner: ApiClient, name: str, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    """The provider's status once it is ready; waits on the planner's change stream (a
    status change arrives as an ``inventory`` or ``provider`` change of that name)."""
    deadline = time.monotonic() + timeout
    try:
        with HttpChangeFeed(planner, read_timeout=timeout).open() as changes:
            status: dict[str, Any] = planner.get(f"/providers/{name}")["status"]
            while status["phase"] != "ready":
                if status["phase"] == "error" or time.monotonic() > deadline:
                    raise CliError(f"provider {name} did not become ready: {status['message'] or status['phase']}")
                change = next(changes, None)
                if change is None:
                    raise StreamLostError("the planner ended its event stream")
                if change.get("name") == name or change.get("kind") == "resync":
                    status = planner.get(f"/providers/{name}")["status"]
            return status
    except StreamLostError as error:
        raise CliError(f"provider {name} did not become ready within {timeout:.0f}s ({error})") from None


def plan_everything(stack: LocalStack, console: Console) -> dict[str, Any]:
    """Add both providers, map the simulator's networks and datastores, plan all VMs;
    returns the plan (with its validation)."""
    planner = ApiClient(stack.services["planner"].http_url, "planner", PLANNER_URL_ENV, stack.api_token())
    inventory = ApiClient(
        stack.services["inventory"].http_url, "inventory service", "FERRY_INVENTORY_URL", stack.api_token()
    )
    simulator = stack.vcsim
    planner.post("/providers", {
        "name": SOURCE, "type": "vsphere", "url": simulator.sdk_url, "username": simulator.username,
        "password": simulator.password, "thumbprint": simulator.thumbprint_sha256,
    })  # fmt: skip
    planner.post("/providers", {"name": TARGET, "type": "local", "path": str(stack.target_dir)})
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
    plan: dict[str, Any] = planner.post("/plans", {
        "name": PLAN, **ends, "network_map": "demo-networks", "storage_map": "demo-storage",
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
                                    ("CONCERNS", lambda r: r["concerns"])], title=f"plan {PLAN}")  # fmt: skip
    console.print(f"plan {PLAN} is {'Ready' if plan['status']['ready'] else 'not Ready'}")
    return plan
