"""Benchmark: the vSphere adapter's full load of a generated vCenter (not a test).

Starts ferry-vcsim with ``--vms`` generated VMs (plus a few hosts, datastores and
networks), then does what :class:`VsphereWatcher` does on connect and times each step:
TLS probe + login, the full load (container view + paged ``RetrievePropertiesEx`` +
building every record), and the change feed's first ``WaitForUpdatesEx`` round (which
returns the whole state again and is compared with the load).

    .venv/bin/python services/inventory/benchmarks/load_inventory.py [--vms 5000] [--batch-size 500]
"""

import argparse
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from ferry_inventory.adapters.vsphere.live import LiveInventory
from ferry_peers.vcsim import start_vcsim
from ferry_shared.credentials import Secret
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.endpoint import parse_endpoint
from ferry_shared.vsphere.session import Credentials, open_session
from ferry_shared.vsphere.trust import client_context, normalize_thumbprint, probe


def generated_model(count: int) -> dict[str, Any]:
    return {
        "datacenters": [
            {
                "name": "DC0",
                "datastores": [{"name": "ds-0", "capacity": "100TiB"}, {"name": "ds-1", "type": "NFS"}],
                "networks": [{"name": "VM Network"}],
                "dvswitches": [{"name": "DSwitch", "portgroups": [{"name": "dvpg-app", "vlan": 20}]}],
                "clusters": [{"name": "C0", "hosts": [{"name": f"esx-{i:02d}"} for i in range(4)]}],
                "generate": [
                    {
                        "count": count,
                        "prefix": "bulk-vm-",
                        "digits": 5,
                        "template": {
                            "power_state": "poweredOn",
                            "guest_id": "ubuntu64Guest",
                            "cluster": "C0",
                            "disks": [
                                {"capacity": "1GiB", "datastore": "ds-0"},
                                {"capacity": "1GiB", "datastore": "ds-1", "controller": "sata"},
                            ],
                            "nics": [{"network": "dvpg-app"}, {"network": "VM Network", "adapter": "e1000e"}],
                            "snapshots": ["base"],
                        },
                    }
                ],
            }
        ]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="ferry-vcsim-", dir=shm if shm.is_dir() else None) as work:
        started = time.monotonic()
        simulator = start_vcsim(
            Path(work), password=secrets.token_urlsafe(12), model=generated_model(args.vms), timeout=600
        )
        print(f"simulator built {args.vms} VMs in {time.monotonic() - started:.1f}s")
        try:
            spec = ProviderSpec(name="bench", type="vsphere", url=simulator.sdk_url, username=simulator.username)
            measure(spec, simulator.password, simulator.thumbprint_sha256, args.batch_size)
        finally:
            simulator.stop()


def measure(spec: ProviderSpec, password: str, thumbprint: str, batch_size: int) -> None:
    started = time.monotonic()
    endpoint = parse_endpoint(spec.url)
    pinned = normalize_thumbprint(thumbprint)
    context = client_context(ProviderSpec(name=spec.name, type="vsphere", thumbprint=pinned))
    probe(endpoint, context, pinned, 10.0)
    session = open_session(endpoint, context, pinned, Credentials(spec.username, Secret(password)), 120.0)
    connected = time.monotonic()
    live = LiveInventory(session, batch_size=batch_size, max_wait_seconds=2)
    try:
        records = live.load(lambda: False)
        loaded = time.monotonic()
        live.follow()
        changes = live.next_changes(lambda: False)
        synced = time.monotonic()
    finally:
        live.close()
    vms = sum(1 for kind, _ in records if kind == "vm")
    print(f"VMs: {vms} (records: {len(records)}, counts: {live.mirror.counts()})")
    print(f"connect (TLS probe + login): {connected - started:.2f}s")
    print(f"full load (RetrievePropertiesEx, batch {batch_size}, + records): {loaded - connected:.2f}s")
    print(f"change feed's first round (whole state again): {synced - loaded:.2f}s, {len(changes.put)} changed")


if __name__ == "__main__":
    main()
