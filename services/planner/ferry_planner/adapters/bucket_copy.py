"""An in-memory copy of the planner's providers, maps and plans as stored in its bucket,
so a listing reads memory instead of every key of the bucket.

Fed from two sides: the follow of the bucket (``bootstrap``: every replica's writes) and
this replica's own writes (:class:`~ferry_planner.adapters.repository.PlannerRepository`,
applied as soon as the store answered, so the next listing shows them). Each key keeps
the newest revision either side gave; an older one arriving later is ignored, and a
deleted key remembers its revision so a late older value cannot bring it back. Its
``health`` is the follow's: not ready until the bucket is first read, and while the
watch is broken; listings read the bucket itself meanwhile.
"""

import asyncio
from collections.abc import Mapping

from ferry_shared.bus.kv_watch import Stored
from ferry_shared.readiness import Health


class BucketCopy:
    """Live values of the keys under ``prefixes`` (``plan`` for ``plan.<name>``), with revisions."""

    def __init__(self, prefixes: frozenset[str]) -> None:
        self._by_prefix: dict[str, dict[str, Stored]] = {prefix: {} for prefix in prefixes}
        self._deleted_at: dict[str, int] = {}
        self.loaded = asyncio.Event()
        self.health = Health(not_ready="the planner bucket is not read yet")

    def holds(self, key: str) -> bool:
        """Whether ``key`` is of a prefix this copy keeps."""
        return key.split(".", 1)[0] in self._by_prefix

    def is_current(self) -> bool:
        """Read once and still followed: what it holds is the bucket's."""
        return self.loaded.is_set() and self.health.is_ready

    def under(self, prefix: str) -> Mapping[str, Stored]:
        """The live keys under ``prefix`` (read-only: the copy's own mapping)."""
        return self._by_prefix[prefix]

    def apply(self, key: str, revision: int, value: bytes | None) -> None:
        """Take an entry (value None: deleted; revision 0: found gone, revision unknown)."""
        entries = self._by_prefix.get(key.split(".", 1)[0])
        if entries is None:
            return
        known = self._revision(entries, key)
        if revision and revision <= known:
            return  # older than what is held (a watch replaying behind this replica's own write)
        if value is None:
            entries.pop(key, None)
            self._deleted_at[key] = max(revision, known)
        else:
            entries[key] = Stored(value=value, revision=revision)
            self._deleted_at.pop(key, None)

    def deleted(self, key: str) -> None:
        """This replica deleted ``key``: gone now, whatever older value is still on its way."""
        self.apply(key, 0, None)

    def _revision(self, entries: dict[str, Stored], key: str) -> int:
        held = entries.get(key)
        return held.revision if held is not None else self._deleted_at.get(key, 0)
