"""The three cases of the benchmark and the simulator model that serves their disks.

(a) a dense disk of random data; (b) a larger disk with one tenth of it allocated
(1 MiB of data every 10 MiB) on a VM with Changed Block Tracking on; (c) the dense disk
again with the simulator capping each connection (vSphere's per-stream limit).
"""

from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB

DATACENTER = "DC0"
DATASTORE = "LocalDS_0"
DENSE_VM = "line-rate-dense"
SPARSE_VM = "line-rate-sparse"
SPARSE_STRIDE = 10 * MiB  # one extent of data every stride bytes ...
SPARSE_EXTENT = 1 * MiB  # ... of this length: 10% allocated


@dataclass(frozen=True)
class Sizes:
    """Disk sizes in bytes and the per-connection cap of case (c) in bytes/second."""

    dense: int
    sparse: int
    cap_per_connection: int


FULL = Sizes(dense=4 * GiB, sparse=16 * GiB, cap_per_connection=100 * MiB)
QUICK = Sizes(dense=512 * MiB, sparse=2 * GiB, cap_per_connection=100 * MiB)


@dataclass(frozen=True)
class CaseSpec:
    """One case: which VM's disk, and the bandwidth cap while it runs (0 = none)."""

    key: str
    title: str
    vm: str
    capacity: int
    allocated: int
    bandwidth_per_connection: int


def sparse_allocated(capacity: int) -> int:
    """Bytes of data in the sparse disk: ``SPARSE_EXTENT`` at the start of every ``SPARSE_STRIDE``."""
    whole, rest = divmod(capacity, SPARSE_STRIDE)
    return whole * SPARSE_EXTENT + min(rest, SPARSE_EXTENT)


def case_specs(sizes: Sizes) -> list[CaseSpec]:
    cap_mib = sizes.cap_per_connection / MiB
    return [
        CaseSpec("a", f"dense {_size(sizes.dense)}", DENSE_VM, sizes.dense, sizes.dense, 0),
        CaseSpec(
            "b",
            f"{_size(sizes.sparse)}, 10% allocated, CBT on",
            SPARSE_VM,
            sizes.sparse,
            sparse_allocated(sizes.sparse),
            0,
        ),
        CaseSpec(
            "c",
            f"dense {_size(sizes.dense)}, {cap_mib:g} MiB/s per connection",
            DENSE_VM,
            sizes.dense,
            sizes.dense,
            sizes.cap_per_connection,
        ),
    ]


def validate(sizes: Sizes) -> None:
    """Refuse sizes the simulator or the cases cannot use, saying what to pass instead."""
    for name, size in (("--dense-size", sizes.dense), ("--sparse-size", sizes.sparse)):
        if size < MiB or size % MiB:
            raise ValueError(f"{name} must be a whole number of MiB, at least 1 MiB; got {size} bytes")
    if sizes.cap_per_connection < 64 * 1024:
        raise ValueError(f"--cap-mib must be at least 0.0625 (64 KiB/s); got {sizes.cap_per_connection} bytes/s")


def model(sizes: Sizes) -> dict[str, Any]:
    """ferry-vcsim model with the dense and the sparse (CBT) VM, one disk each."""
    return {
        "datacenters": [
            {
                "name": DATACENTER,
                "datastores": [{"name": DATASTORE, "capacity": "64TiB"}],
                "clusters": [{"name": "C0", "hosts": [{"name": "esx-01"}]}],
                "vms": [
                    {
                        "name": DENSE_VM,
                        "disks": [{"capacity": sizes.dense, "content": {"kind": "random", "seed": 41}}],
                    },
                    {
                        "name": SPARSE_VM,
                        "cbt": True,
                        "disks": [
                            {
                                "capacity": sizes.sparse,
                                "content": {
                                    "kind": "extents",
                                    "seed": 42,
                                    "extents": [],
                                    "pattern": {"offset": 0, "stride": SPARSE_STRIDE, "length": SPARSE_EXTENT},
                                },
                            }
                        ],
                    },
                ],
            }
        ]
    }


def _size(size: int) -> str:
    return f"{size / GiB:g} GiB" if size >= GiB else f"{size / MiB:g} MiB"
