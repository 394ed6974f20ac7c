"""Benchmark: ``GET /api/v1/plans`` with 500 plans, idle and while a 50-VM migration runs.

Starts nats-server, ferry-vcsim with a generated model (``--vms`` VMs, one disk of ``--disk-mib``
random data and one NIC each) and all four services as processes; adds the vCenter and a local target,
creates maps and ``--plans`` plans (each naming ``--plan-vms`` of the VMs), then times
``--calls`` listings while nothing happens, and listings (and ``GET /plans/{name}``)
for as long as a migration of every VM runs. Prints p50/p95/p99 per run and the median
of each over ``--runs``.

    .venv/bin/python -m benchmarks.plan_listing [--plans 500] [--vms 50] [--calls 200] [--runs 3]

To measure another checkout's planner (the behaviour before a change), run this file
with that checkout's interpreter: the services are started with ``sys.executable``.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ferry_peers.nats_server import start_nats_server
from ferry_peers.processes import stop_all
from ferry_peers.services import SERVICE_MODULES, start_service
from ferry_peers.vcsim import start_vcsim

PERCENTILES = (50, 95, 99)


def generated_model(count: int, disk_mib: int) -> dict[str, Any]:
    """``count`` powered-off VMs with one ``disk_mib`` disk and one NIC each (MACs set: generated ones can clash)."""
    vms = [
        {
            "name": f"bench-vm-{i:03d}",
            "cluster": "C0",
            "power_state": "poweredOff",
            "guest_id": "rhel9_64Guest",
            "disks": [{"capacity": f"{disk_mib}MiB", "datastore": "LocalDS_0", "content": random_data(seed=i)}],
            "nics": [{"network": "VM Network", "mac": f"00:50:56:ab:{i // 256:02x}:{i % 256:02x}"}],
        }
        for i in range(count)
    ]
    return {
        "datacenters": [
            {
                "name": "DC0",
                "datastores": [{"name": "LocalDS_0"}],
                "networks": [{"name": "VM Network"}],
                "clusters": [{"name": "C0", "hosts": [{"name": f"H{i}"} for i in range(8)]}],
                "vms": vms,
            }
        ]
    }


def random_data(seed: int) -> dict[str, Any]:
    return {"kind": "random", "seed": seed}


def until(probe: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for ``probe()`` (checked every 50 ms) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark condition not reached: {what}")
        time.sleep(0.05)


def percentiles(samples: list[float]) -> dict[int, float]:
    """p50/p95/p99 in milliseconds (nearest rank)."""
    ordered = sorted(samples)
    return {p: 1000 * ordered[min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1)] for p in PERCENTILES}


def timed(http: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    http.get(url, timeout=120).raise_for_status()
    return time.perf_counter() - started


def set_up(http: httpx.Client, api: str, simulator: Any, work: Path, plans: int, vms: int, plan_vms: int) -> None:
    body = {"name": "vc", "type": "vsphere", "url": simulator.sdk_url, "username": simulator.username,
            "password": simulator.password, "thumbprint": simulator.thumbprint_sha256}  # fmt: skip
    http.post(f"{api}/providers", json=body, timeout=30).raise_for_status()
    target = {"name": "out", "type": "local", "path": str(work / "out")}
    http.post(f"{api}/providers", json=target, timeout=30).raise_for_status()

    def ready(name: str, count: int | None = None) -> bool:
        status = http.get(f"{api}/providers/{name}", timeout=30).json()["status"]
        return bool(status["phase"] == "ready" and (count is None or status["counts"].get("vm") == count))

    until(lambda: ready("vc", vms) and ready("out"), 300, "providers ready")
    pairs = {"source_provider": "vc", "target_provider": "out"}
    network_map = {"name": "n", **pairs, "pairs": [{"source": "VM Network", "destination": "pod"}]}
    storage_map = {"name": "s", **pairs, "pairs": [{"source": "LocalDS_0", "storage_class": "standard"}]}
    http.post(f"{api}/networkmaps", json=network_map, timeout=30).raise_for_status()
    http.post(f"{api}/storagemaps", json=storage_map, timeout=30).raise_for_status()
    common = {**pairs, "network_map": "n", "storage_map": "s", "target_namespace": "default"}
    for i in range(plans):
        refs = [{"ref": f"bench-vm-{(i + k) % vms:03d}"} for k in range(plan_vms)]
        http.post(f"{api}/plans", json={"name": f"p-{i:03d}", **common, "vms": refs}, timeout=120).raise_for_status()
    everything = [{"ref": f"bench-vm-{i:03d}"} for i in range(vms)]
    created = http.post(f"{api}/plans", json={"name": "move", **common, "vms": everything}, timeout=120)
    created.raise_for_status()
    assert created.json()["status"]["ready"], created.json()["status"]


def one_run(work: Path, plans: int, vms: int, plan_vms: int, calls: int, disk_mib: int) -> dict[str, dict[int, float]]:
    model = generated_model(vms, disk_mib)
    simulator = start_vcsim(work / "vcsim", password="bench-password", model=model, timeout=300)
    nats = start_nats_server(work / "nats")
    services = []
    http = httpx.Client(headers=nats.security.api_headers())
    try:
        services = [start_service(name, nats, work) for name in SERVICE_MODULES]
        planner = services[list(SERVICE_MODULES).index("planner")]
        api = f"{planner.http_url}/api/v1"
        set_up(http, api, simulator, work, plans, vms, plan_vms)
        listed = http.get(f"{api}/plans", timeout=120).json()
        assert len(listed) == plans + 1, len(listed)

        idle = [timed(http, f"{api}/plans") for _ in range(calls)]

        http.post(f"{api}/migrations", json={"plan": "move", "name": "move-1"}, timeout=60).raise_for_status()
        during: list[float] = []
        shown: list[float] = []
        started = time.monotonic()
        while True:
            during.append(timed(http, f"{api}/plans"))
            shown.append(timed(http, f"{api}/plans/p-{len(shown) % plans:03d}"))
            phase = http.get(f"{api}/migrations/move-1", timeout=30).json()["phase"]
            if phase != "Running":
                break
            if time.monotonic() - started > 900:
                raise TimeoutError("the migration did not end in 15 minutes")
        migration_seconds = time.monotonic() - started
        assert phase == "Succeeded", phase
        print(f"  migration of {vms} VMs: {migration_seconds:.1f} s, {len(during)} listings during it", flush=True)
    finally:
        http.close()
        stop_all(service.process for service in services)
        nats.stop()
        simulator.stop()
    return {
        f"GET /plans, idle ({calls} calls)": percentiles(idle),
        "GET /plans, during the migration": percentiles(during),
        "GET /plans/{name}, during the migration": percentiles(shown),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", type=int, default=500)
    parser.add_argument("--vms", type=int, default=50)
    parser.add_argument("--plan-vms", type=int, default=2, help="VMs named by each of the --plans plans")
    parser.add_argument("--calls", type=int, default=200, help="idle listings timed")
    parser.add_argument("--disk-mib", type=int, default=32, help="each VM's one disk (random data)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[int, float]]] = {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="ferry-bench-", dir="/dev/shm") as work:
            run_figures = one_run(Path(work), args.plans, args.vms, args.plan_vms, args.calls, args.disk_mib)
            for name, figures in run_figures.items():
                results.setdefault(name, []).append(figures)
                print(f"  {name:<42} " + "  ".join(f"p{p} {figures[p]:7.1f} ms" for p in PERCENTILES), flush=True)
        print(f"run {run + 1}/{args.runs} done", flush=True)
    print(f"\n{args.plans} plans of {args.plan_vms} VMs, a {args.vms}-VM migration; median of {args.runs} runs:")
    for name, runs in results.items():
        medians = {p: statistics.median(r[p] for r in runs) for p in PERCENTILES}
        print(f"  {name:<42} " + "  ".join(f"p{p} {medians[p]:7.1f} ms" for p in PERCENTILES))


if __name__ == "__main__":
    main()
