"""Source readers kept open per disk, and this worker's caps on connections per source host and datastore.

Opening a reader means a session and fresh TLS connections, so :class:`SourcePool` keeps one
reader per (provider, disk) while ranges use it, plus a few idle ones (the least recently
used beyond ``idle_readers`` are closed). Every read through the pool first takes a slot of
its source host (the provider's endpoint, through which vCenter serves datastore files) and
one of its datastore: at most ``per_host`` and ``per_datastore`` reads — so HTTP
connections — at once from this worker. Across N workers the caps are N times these.
"""

import asyncio
import contextlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from ferry_shared.migrations import SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.endpoint import parse_endpoint
from ferry_transfer.domain.ports import DiskSource

_DATASTORE = re.compile(r"^\s*\[(?P<name>[^\]]+)\]")
ReaderKey = tuple[ProviderSpec, str, str]


class SourceOpener(Protocol):
    def open(
        self, provider: ProviderSpec, disk: SourceDisk, connections: int
    ) -> AbstractAsyncContextManager[DiskSource]:
        """A reader of the disk's bytes with up to ``connections`` requests in flight."""


@dataclass(frozen=True)
class SourceLimits:
    per_host: int = 8
    """Reads (HTTP connections) at once from this worker to one source host."""
    per_datastore: int = 8
    """Reads at once from this worker to one datastore."""


class LimitedReader:
    """A disk reader whose every read holds a slot of its host and of its datastore."""

    def __init__(self, reader: DiskSource, host: asyncio.Semaphore, datastore: asyncio.Semaphore) -> None:
        self._reader = reader
        self._host = host
        self._datastore = datastore

    async def read(self, offset: int, length: int) -> bytes:
        async with self._host, self._datastore:  # always in this order: no deadlock between readers
            return await self._reader.read(offset, length)

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        async with self._host, self._datastore:
            await self._reader.read_into(offset, buffer)


@dataclass
class _Entry:
    reader: LimitedReader
    closer: contextlib.AsyncExitStack
    users: int = 0


@dataclass
class SourcePool:
    """Pooled, limited readers of source disks (the handlers' source port); see the module docstring."""

    opener: SourceOpener
    limits: SourceLimits = field(default_factory=SourceLimits)
    idle_readers: int = 8
    _entries: OrderedDict[ReaderKey, _Entry] = field(default_factory=OrderedDict)
    _opening: dict[ReaderKey, asyncio.Lock] = field(default_factory=dict)
    _hosts: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _datastores: dict[tuple[str, str], asyncio.Semaphore] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def reader(self, provider: ProviderSpec, disk: SourceDisk) -> AsyncIterator[DiskSource]:
        """A reader of ``disk`` (opened, or reused while open); the pool closes it later."""
        entry = await self._acquire(provider, disk)
        try:
            yield entry.reader
        finally:
            entry.users -= 1
            await self._close_idle()

    async def close_all(self) -> None:
        """Close every reader (at shutdown)."""
        entries, self._entries = list(self._entries.values()), OrderedDict()
        for entry in entries:
            await entry.closer.aclose()

    async def _acquire(self, provider: ProviderSpec, disk: SourceDisk) -> _Entry:
        key = (provider, disk.file_name, disk.datacenter)
        async with self._opening.setdefault(key, asyncio.Lock()):
            entry = self._entries.get(key)
            if entry is None:
                entry = await self._open(provider, disk)
                self._entries[key] = entry
            self._entries.move_to_end(key)
            entry.users += 1
            return entry

    async def _open(self, provider: ProviderSpec, disk: SourceDisk) -> _Entry:
        host = str(parse_endpoint(provider.url))
        match = _DATASTORE.match(disk.file_name)
        datastore = match["name"] if match else ""
        host_slots = self._hosts.setdefault(host, asyncio.Semaphore(self.limits.per_host))
        datastore_slots = self._datastores.setdefault((host, datastore), asyncio.Semaphore(self.limits.per_datastore))
        closer = contextlib.AsyncExitStack()
        try:
            reader = await closer.enter_async_context(self.opener.open(provider, disk, self.limits.per_host))
        except BaseException:
            await closer.aclose()
            raise
        return _Entry(LimitedReader(reader, host_slots, datastore_slots), closer)

    async def _close_idle(self) -> None:
        idle = [key for key, entry in self._entries.items() if entry.users == 0]
        for key in idle[: max(0, len(idle) - self.idle_readers)]:
            await self._entries.pop(key).closer.aclose()
