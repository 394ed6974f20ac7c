"""Benchmark: a 5,000-VM vCenter through Ferry's inventory, and a 500-VM plan.

Starts nats-server, ferry-vcsim with a generated model, and the inventory and planner
services as processes; adds the vCenter as a provider and times (a) until the provider
is ready with every VM loaded, (b) until the inventory API answers a filtered query,
(c) how long a 500-VM plan takes to create and validate. Prints medians of --runs.

    .venv/bin/python benchmarks/inventory_scale.py [--vms 5000] [--plan-vms 500] [--runs 3]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ferry_peers.nats_server import start_nats_server
from ferry_peers.services import start_service
from ferry_peers.vcsim import start_vcsim


def generated_model(count: int) -> dict[str, Any]:
    return {
        "datacenters": [
            {
                "name": "DC0",
                "datastores": [{"name": "LocalDS_0"}],
                "networks": [{"name": "VM Network"}],
                "clusters": [{"name": "C0", "hosts": [{"name": f"H{i}"} for i in range(8)]}],
                "generate": [
                    {
                        "count": count,
                        "prefix": "bulk-vm-",
                        "digits": 5,
                        "template": {
                            "cluster": "C0",
                            "power_state": "poweredOn",
                            "guest_id": "rhel9_64Guest",
                            "disks": [{"capacity": "1GiB", "datastore": "LocalDS_0"}],
                            "nics": [{"network": "VM Network"}],
                        },
                    }
                ],
            }
        ]
    }


def until(probe: Any, timeout: float) -> float:
    """Seconds until ``probe()`` is true (checked every 20 ms)."""
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > timeout:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(0.02)
    return time.monotonic() - start


def one_run(work: Path, vms: int, plan_vms: int) -> dict[str, float]:
    started = time.monotonic()
    simulator = start_vcsim(work / "vcsim", password="bench-password", model=generated_model(vms), timeout=600)
    simulator_seconds = time.monotonic() - started
    nats = start_nats_server(work / "nats")
    services = [start_service(name, nats, work) for name in ("inventory", "planner")]
    inventory, planner = services
    api = f"{planner.http_url}/api/v1"
    http = httpx.Client(headers=nats.security.api_headers())
    try:
        body = {"name": "vc", "type": "vsphere", "url": simulator.sdk_url, "username": simulator.username,
                "password": simulator.password, "thumbprint": simulator.thumbprint_sha256}  # fmt: skip
        t0 = time.monotonic()
        http.post(f"{api}/providers", json=body, timeout=30).raise_for_status()
        http.post(f"{api}/providers", json={"name": "out", "type": "local", "path": str(work / "out")}, timeout=30)

        def loaded() -> bool:
            status = http.get(f"{api}/providers/vc", timeout=30).json()["status"]
            return bool(status["phase"] == "ready" and status["counts"].get("vm") == vms)

        until(loaded, 900)
        load_seconds = time.monotonic() - t0
        query = f"{inventory.http_url}/api/v1/providers/vc/vms?name=bulk-vm-0042&limit=10"
        queryable_seconds = load_seconds + until(lambda: http.get(query, timeout=30).json()["total"] >= 1, 60)

        pairs = {"source_provider": "vc", "target_provider": "out"}
        network_map = {"name": "n", **pairs, "pairs": [{"source": "VM Network", "destination": "pod"}]}
        storage_map = {"name": "s", **pairs, "pairs": [{"source": "LocalDS_0", "storage_class": "standard"}]}
        http.post(f"{api}/networkmaps", json=network_map, timeout=30).raise_for_status()
        http.post(f"{api}/storagemaps", json=storage_map, timeout=30).raise_for_status()
        plan = {"name": "big", **pairs, "network_map": "n", "storage_map": "s", "target_namespace": "default",
                "vms": [{"ref": f"bulk-vm-{i:05d}"} for i in range(plan_vms)]}  # fmt: skip
        t1 = time.monotonic()
        created = http.post(f"{api}/plans", json=plan, timeout=120)
        created.raise_for_status()
        plan_seconds = time.monotonic() - t1
        status = created.json()["status"]
        assert status["ready"], status["conditions"]
        assert len(status["vms"]) == plan_vms
        t2 = time.monotonic()
        http.get(f"{api}/plans/big", timeout=120).raise_for_status()
        revalidate_seconds = time.monotonic() - t2
    finally:
        http.close()
        for service in services:
            service.process.stop()
        nats.stop()
        simulator.stop()
    return {
        "simulator build (not Ferry)": simulator_seconds,
        "provider ready, all VMs loaded": load_seconds,
        "first filtered query answered": queryable_seconds,
        f"plan of {plan_vms} VMs created + validated": plan_seconds,
        f"plan of {plan_vms} VMs re-read (validated again)": revalidate_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=5000)
    parser.add_argument("--plan-vms", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="ferry-bench-", dir="/dev/shm") as work:
            for name, seconds in one_run(Path(work), args.vms, args.plan_vms).items():
                results.setdefault(name, []).append(seconds)
        print(f"run {run + 1}/{args.runs} done", flush=True)
    print(f"\n{args.vms} VMs, plan of {args.plan_vms}; median of {args.runs} runs (min-max):")
    for name, values in results.items():
        print(f"  {name:<48} {statistics.median(values):7.2f} s  ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
