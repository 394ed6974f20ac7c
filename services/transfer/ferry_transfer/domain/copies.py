"""What a disk copy is about and what copying one range produced: the value types the
transfer's handlers, its checkpoint store and its range copier share."""

import hashlib
from dataclasses import dataclass

from .checkpoint import RangeCounts


@dataclass(frozen=True)
class DiskId:
    """Which disk copy a checkpoint (and an event) is about."""

    migration: str
    vm_id: str
    disk_key: int

    @property
    def token(self) -> str:
        """A hash of the three names: a valid key part whatever the names are."""
        name = f"{self.migration}\0{self.vm_id}\0{self.disk_key}".encode()
        return hashlib.sha256(name).hexdigest()[:32]


@dataclass(frozen=True)
class RangeCopy:
    """A copied and checked range: its digest, what it took, and how many copies."""

    digest: bytes
    counts: RangeCounts
    attempts: int
