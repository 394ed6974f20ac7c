"""A sink whose :meth:`finish` shares one flush with the other ranges of the same sink
(:class:`~.group_sync.GroupSync`); everything else goes straight to the sink it wraps."""

import asyncio
import os
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from ferry_transfer.domain.ports import BlockingSink, Buffer, DiskSink

from .group_sync import Flush, GroupSync


@dataclass
class GroupedSink:
    """``sink`` made durable by ``flush`` through ``groups`` under ``key``."""

    sink: DiskSink
    groups: GroupSync
    key: Hashable
    flush: Flush

    @property
    def size(self) -> int:
        return self.sink.size

    @property
    def blocking(self) -> BlockingSink | None:
        return self.sink.blocking

    async def write(self, offset: int, data: Buffer) -> None:
        await self.sink.write(offset, data)

    async def zero(self, offset: int, length: int) -> None:
        await self.sink.zero(offset, length)

    async def finish(self) -> None:
        await self.groups.durable(self.key, self.flush)

    async def read(self, offset: int, length: int) -> bytes:
        return await self.sink.read(offset, length)

    async def reads_zero(self, offset: int, length: int) -> bool:
        return await self.sink.reads_zero(offset, length)


async def sync_file(path: Path) -> None:
    """fdatasync ``path`` through a descriptor of its own: it flushes every write to the file,
    whichever descriptor made it (so it outlives the range that asked for it)."""

    def sync() -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    await asyncio.to_thread(sync)
