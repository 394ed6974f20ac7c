"""The simulated vCenter of ``ferry demo``: ferry-vcsim's default inventory (see
``peers/vcsim/README.md``) plus ``demo-app``, a VM whose disks hold real data — 256 MiB
of random bytes and a 1 GiB disk with 64 MiB of data in extents (the rest a hole, which
Changed Block Tracking lets the copy skip). Every byte is deterministic, so a migrated
disk can be compared with its source."""

from typing import Any

DEMO_VM = "demo-app"

_DEMO_APP: dict[str, Any] = {
    "name": DEMO_VM,
    "cluster": "C0",
    "power_state": "poweredOn",
    "guest_id": "rhel9_64Guest",
    "guest_full_name": "Red Hat Enterprise Linux 9 (64-bit)",
    "num_cpu": 2,
    "memory_mb": 2048,
    "cbt": True,
    "annotation": "Ferry demo: one dense and one mostly sparse disk",
    "guest": {"hostname": "demo-app.example.com", "ip_addresses": ["192.168.10.20"]},
    "disks": [
        {"capacity": "256MiB", "datastore": "LocalDS_0", "content": {"kind": "random", "seed": 11}},
        {
            "capacity": "1GiB",
            "datastore": "LocalDS_1",
            "content": {
                "kind": "extents",
                "seed": 12,
                "extents": [{"offset": 0, "length": "4MiB"}],
                "pattern": {"offset": "64MiB", "stride": "32MiB", "length": "2MiB"},
            },
        },
    ],
    "nics": [{"network": "VM Network", "mac": "00:50:56:aa:00:20"}],
}

_DEFAULT_VMS: list[dict[str, Any]] = [
    {
        "name": "vm-bios", "cluster": "C0", "power_state": "poweredOn", "guest_id": "rhel8_64Guest",
        "guest_full_name": "Red Hat Enterprise Linux 8 (64-bit)", "firmware": "bios", "num_cpu": 2,
        "memory_mb": 2048, "annotation": "BIOS VM with one random-filled disk", "cbt": True,
        "guest": {"hostname": "vm-bios.example.com", "ip_addresses": ["192.168.10.11"]},
        "disks": [{"capacity": "4MiB", "datastore": "LocalDS_0", "controller": "lsilogic",
                   "content": {"kind": "random", "seed": 1}}],
        "nics": [{"network": "VM Network", "adapter": "vmxnet3", "mac": "00:50:56:aa:00:01"}],
    },
    {
        "name": "vm-efi", "cluster": "C0", "power_state": "poweredOn", "guest_id": "windows2019srv_64Guest",
        "guest_full_name": "Microsoft Windows Server 2019 (64-bit)", "firmware": "efi", "secure_boot": True,
        "vtpm": True, "num_cpu": 4, "cores_per_socket": 2, "memory_mb": 4096, "cpu_hot_add": True,
        "memory_hot_add": True, "cbt": True,
        "annotation": "EFI + secure boot + vTPM, two disks on two datastores, two NICs",
        "guest": {"hostname": "vm-efi", "ip_addresses": ["192.168.10.12"]},
        "disks": [
            {"capacity": "8MiB", "datastore": "LocalDS_0", "controller": "pvscsi",
             "content": {"kind": "extents", "seed": 2,
                         "extents": [{"offset": 0, "length": "1MiB"}, {"offset": "5MiB", "length": "512KiB"}]}},
            {"capacity": "6MiB", "datastore": "LocalDS_1", "controller": "pvscsi", "provisioning": "thick",
             "content": {"kind": "random", "seed": 3}},
        ],
        "nics": [{"network": "VM Network", "adapter": "vmxnet3"}, {"network": "DC0_DVPG0", "adapter": "e1000e"}],
    },
    {
        "name": "vm-sata-off", "cluster": "C0", "power_state": "poweredOff", "guest_id": "ubuntu64Guest",
        "guest_full_name": "Ubuntu Linux (64-bit)", "firmware": "efi", "num_cpu": 1, "memory_mb": 1024,
        "snapshots": ["before-upgrade"],
        "disks": [{"capacity": "2MiB", "datastore": "LocalDS_1", "controller": "sata",
                   "content": {"kind": "extents", "seed": 4, "extents": [{"offset": "64KiB", "length": "128KiB"}]}}],
        "nics": [{"network": "DC0_DVPG0", "adapter": "e1000", "connected": False}],
    },
]  # fmt: skip


def demo_model() -> dict[str, Any]:
    """The model JSON for ``ferry-vcsim --model``."""
    return {
        "datacenters": [
            {
                "name": "DC0",
                "datastores": [
                    {"name": "LocalDS_0", "type": "VMFS", "capacity": "2TiB"},
                    {"name": "LocalDS_1", "type": "NFS", "capacity": "1TiB"},
                ],
                "networks": [{"name": "VM Network"}],
                "dvswitches": [{"name": "DVS0", "portgroups": [{"name": "DC0_DVPG0", "vlan": 100}]}],
                "clusters": [{"name": "C0", "hosts": [{"name": "DC0_C0_H0"}, {"name": "DC0_C0_H1"}]}],
                "vms": [*_DEFAULT_VMS, _DEMO_APP],
            }
        ]
    }
