"""The allocated extents of a source disk, from vSphere Changed Block Tracking.

``QueryChangedDiskAreas(changeId="*")`` on the VM answers the disk's allocated areas from
``startOffset`` on; vSphere may answer only part of the disk (``DiskChangeInfo.length``), so
:func:`allocated_extents` asks again from where each answer ends. A session vCenter no
longer knows is renewed once. Where CBT cannot answer (turned off since the inventory saw
it, an unknown disk, any other vSphere fault) the copy reads the whole disk instead, which
is slower but always right; a broken connection is a :class:`ProviderError` worth retrying.
"""

import asyncio
import http.client
import logging
from collections.abc import Callable

from pyVmomi import vim, vmodl

from ferry_shared.migrations import SourceDisk
from ferry_shared.providers import ProviderSpec
from ferry_shared.vsphere.errors import CONNECTION_LOST, ProviderError, fault_text
from ferry_transfer.domain.ranges import Extent

from .source_sessions import SourceLogin, SourceSessions

log = logging.getLogger(__name__)

Answer = tuple[int, int, list[Extent]]
"""One ``DiskChangeInfo``: start offset, length covered, changed (here: allocated) areas."""
Query = Callable[[int], Answer]


class CbtUnavailable(Exception):  # noqa: N818 - reads as what happened
    """CBT gave no usable answer for this disk; copy all of it."""


def allocated_extents(query: Query, capacity: int) -> list[Extent]:
    """Every allocated extent of a disk of ``capacity`` bytes, asking ``query(start)`` page by page."""
    extents: list[Extent] = []
    start = 0
    while start < capacity:
        answer_start, length, areas = query(start)
        end = answer_start + length
        if answer_start > start or end <= start:
            raise CbtUnavailable(f"vSphere answered [{answer_start}, {end}) when asked from offset {start}")
        extents += areas
        start = end
    return extents


class ChangedBlockTracking:
    """Asks vSphere for a disk's allocated extents (the coordinator's port)."""

    def __init__(self, sessions: SourceSessions) -> None:
        self._sessions = sessions

    async def allocated(self, provider: ProviderSpec, vm_id: str, disk: SourceDisk) -> list[Extent] | None:
        """The disk's allocated extents, or None when CBT cannot tell (then the whole disk is read)."""
        login = await self._sessions.get(provider)
        for renewed in (False, True):
            try:
                return await asyncio.to_thread(_query_all, login, vm_id, disk)
            except vim.fault.NotAuthenticated:
                if renewed:
                    raise ProviderError(
                        CONNECTION_LOST, f"vCenter at {login.endpoint} refused a fresh session for CBT"
                    ) from None
                login = await self._sessions.renew(login)
            except (vmodl.MethodFault, CbtUnavailable) as error:
                text = fault_text(error) if isinstance(error, vmodl.MethodFault) else str(error)
                log.warning(
                    "CBT gave no allocated extents for disk %d of VM %s (%s); reading the whole disk",
                    disk.key,
                    vm_id,
                    text,
                )
                return None
            except (OSError, http.client.HTTPException) as error:
                raise ProviderError(
                    CONNECTION_LOST, f"lost the connection to {login.endpoint} while asking CBT: {error}"
                ) from error
        raise AssertionError("unreachable")


def _query_all(login: SourceLogin, vm_id: str, disk: SourceDisk) -> list[Extent]:
    vm = vim.VirtualMachine(vm_id, login.session.service._stub)  # type: ignore[no-untyped-call]

    def query(start: int) -> Answer:
        info = vm.QueryChangedDiskAreas(snapshot=None, deviceKey=disk.key, startOffset=start, changeId="*")
        areas = [Extent(int(area.start), int(area.length)) for area in info.changedArea or ()]
        return int(info.startOffset), int(info.length), areas

    return allocated_extents(query, disk.capacity_bytes)
