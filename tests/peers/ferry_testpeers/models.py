"""Simulator models shared by tests: a vCenter whose VMs trigger every plan check."""

from typing import Any

TAKEN_MAC = "00:50:56:00:00:99"


def _vm(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "cluster": "C0",
        "power_state": "poweredOff",
        "guest_id": "rhel9_64Guest",
        "num_cpu": 2,
        "memory_mb": 1024,
        "cbt": True,
        "disks": [{"capacity": "4MiB", "datastore": "LocalDS_0", "content": {"kind": "random", "seed": 7}}],
        "nics": [{"network": "VM Network"}],
    }
    base.update(spec)
    return base


def planning_model() -> dict[str, Any]:
    """One datacenter, two datastores, standard + distributed + isolated networks, and
    VMs shaped to trigger each validation rule."""
    return {
        "datacenters": [
            {
                "name": "DC0",
                "datastores": [{"name": "LocalDS_0"}, {"name": "LocalDS_1", "type": "NFS"}],
                "networks": [{"name": "VM Network"}, {"name": "Isolated", "vlan": 99}],
                "folders": ["Other"],
                "dvswitches": [{"name": "DVS0", "portgroups": [{"name": "DC0_DVPG0", "vlan": 100}]}],
                "clusters": [
                    {"name": "C0", "hosts": [{"name": "DC0_C0_H0"}, {"name": "DC0_C0_H1", "maintenance": True}]}
                ],
                "vms": [
                    _vm("web-01", power_state="poweredOn"),
                    _vm(
                        "Finance DB (prod)",
                        firmware="efi",
                        secure_boot=True,
                        vtpm=True,
                        num_cpu=4,
                        cores_per_socket=2,
                        memory_mb=4096,
                        disks=[
                            {"capacity": "8MiB", "datastore": "LocalDS_0", "content": {"kind": "random", "seed": 1}},
                            {"capacity": "4MiB", "datastore": "LocalDS_1", "controller": "sata"},
                            {"capacity": "4MiB", "datastore": "LocalDS_1", "content": {"kind": "random", "seed": 2}},
                        ],
                        nics=[
                            {"network": "VM Network", "mac": "00:50:56:00:00:11"},
                            {"network": "DC0_DVPG0", "mac": "00:50:56:00:00:12"},
                        ],
                    ),
                    _vm("multi-pod", nics=[{"network": "VM Network"}, {"network": "VM Network"}]),
                    _vm(
                        "orphan",
                        nics=[{"network": "Isolated"}],
                        disks=[{"capacity": "4MiB", "datastore": "LocalDS_1"}],
                    ),
                    _vm("mac-taken", nics=[{"network": "VM Network", "mac": TAKEN_MAC}]),
                    _vm("exists-01"),
                    _vm(
                        "rdm-01",
                        disks=[
                            {"capacity": "4MiB", "datastore": "LocalDS_0", "rdm": {"compatibility": "physicalMode"}}
                        ],
                    ),
                    _vm("twin"),
                    _vm("twin", folder="Other"),
                ],
            }
        ]
    }


MiB = 1024 * 1024
CANCELED_VM = "bulk-03"
"""The VM the migration tests cancel mid-copy (its disk reads are slowed by a fault rule)."""


def _random(seed: int) -> dict[str, Any]:
    return {"kind": "random", "seed": seed}


def migration_model() -> dict[str, Any]:
    """A vCenter with four VMs to migrate, their disks holding real data:

    - ``Finance DB (prod)``: a name that is not DNS-1123; EFI with secure boot and a vTPM;
      3 disks on 2 datastores (one on a SATA controller); 2 NICs, a standard and a
      distributed portgroup; powered on with VMware Tools running (guest shutdown);
    - ``web-01``: BIOS, one disk, powered off;
    - ``app-02``: powered on without Tools (hard power-off); a sparse disk with extents;
    - ``bulk-03``: a bigger disk, for cancelling mid-copy.
    """
    sparse = {
        "kind": "extents",
        "seed": 5,
        "extents": [{"offset": 0, "length": MiB}, {"offset": 9 * MiB, "length": 3 * MiB + 4096}],
    }
    return {
        "datacenters": [
            {
                "name": "DC0",
                "datastores": [{"name": "LocalDS_0"}, {"name": "LocalDS_1", "type": "NFS"}],
                "networks": [{"name": "VM Network"}],
                "dvswitches": [{"name": "DVS0", "portgroups": [{"name": "DC0_DVPG0", "vlan": 100}]}],
                "clusters": [{"name": "C0", "hosts": [{"name": "DC0_C0_H0"}, {"name": "DC0_C0_H1"}]}],
                "vms": [
                    _vm(
                        "Finance DB (prod)",
                        host="DC0_C0_H0",
                        power_state="poweredOn",
                        firmware="efi",
                        secure_boot=True,
                        vtpm=True,
                        num_cpu=4,
                        cores_per_socket=2,
                        memory_mb=4096,
                        disks=[
                            {"capacity": "24MiB", "datastore": "LocalDS_0", "content": _random(1)},
                            {"capacity": "8MiB", "datastore": "LocalDS_1", "controller": "sata", "content": _random(2)},
                            {"capacity": "16MiB", "datastore": "LocalDS_1", "content": sparse},
                        ],
                        nics=[
                            {"network": "VM Network", "mac": "00:50:56:00:10:11"},
                            {"network": "DC0_DVPG0", "mac": "00:50:56:00:10:12"},
                        ],
                    ),
                    _vm(
                        "web-01",
                        host="DC0_C0_H1",
                        disks=[{"capacity": "16MiB", "datastore": "LocalDS_0", "content": _random(3)}],
                        nics=[{"network": "VM Network", "mac": "00:50:56:00:10:21"}],
                    ),
                    _vm(
                        "app-02",
                        host="DC0_C0_H1",
                        power_state="poweredOn",
                        guest={"tools": "notRunning"},
                        disks=[{"capacity": "32MiB", "datastore": "LocalDS_1", "content": sparse}],
                        nics=[{"network": "DC0_DVPG0", "mac": "00:50:56:00:10:31"}],
                    ),
                    _vm(
                        CANCELED_VM,
                        host="DC0_C0_H0",
                        disks=[{"capacity": "256MiB", "datastore": "LocalDS_0", "content": _random(4)}],
                        nics=[{"network": "VM Network", "mac": "00:50:56:00:10:41"}],
                    ),
                ],
            }
        ]
    }
