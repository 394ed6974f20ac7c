"""The checksum of a copied disk, computed range by range by whichever worker copies each range.

A range's bytes are split into maximal runs of all-zero and not-all-zero blocks of
:data:`ZERO_BLOCK` bytes (on a grid from the range's start; the disk's last block may be
short). The range digest is SHA-256 over one record per run, in order:

* a zero run: ``b"Z"`` + offset + length (big-endian u64 each);
* a data run: ``b"D"`` + offset + length + XXH3-128 of the run's bytes.

The disk checksum is SHA-256 over offset + length + range digest of every range, in order.
It depends only on the disk's bytes and the range size (which the coordinator fixes per
disk), never on how a worker chunked its reads, and zero runs cost no hashing: a sparse
disk's holes are checked with ``memcmp`` speed. The bytes themselves are hashed with
XXH3-128 (about 40 GB/s here, against 1.7 GB/s for SHA-256): a checksum against
accidental corruption — a flipped bit, a lost or misplaced write — not a proof against
someone who forges data on purpose (the byte-for-byte read-back and TLS cover the copy
itself); SHA-256 over the few records keeps the checksum's form.
:func:`disk_checksum` is the reference over a whole disk in memory.
"""

import hashlib
import struct
from collections.abc import Iterable

import xxhash

from .ranges import ZERO_BLOCK, Run, ZeroBlocks

_PLACE = struct.Struct(">QQ")
_ZEROES = ZeroBlocks(ZERO_BLOCK)


class RangeDigest:
    """The streaming digest of one range: feed its bytes in order with :meth:`add` and :meth:`add_zero`.

    Every call but the range's last must cover whole blocks.
    """

    def __init__(self, offset: int) -> None:
        self._records = hashlib.sha256()
        self._position = offset
        self._run_start = offset
        self._run_zero: bool | None = None
        self._run_hash: xxhash.xxh3_128 | None = None

    def add_zero(self, length: int) -> None:
        """``length`` bytes known to be zero (never read)."""
        if length > 0:
            self._extend(True, length)

    def add(self, data: bytes | bytearray, length: int | None = None) -> list[Run]:
        """The next bytes of the range: the first ``length`` of ``data`` (all by default); returns
        their zero and data runs (offsets relative to ``data``)."""
        view = memoryview(data)
        runs = _ZEROES.runs(data, length)
        for run in runs:
            if run.zero:
                self._extend(True, run.length)
            else:
                self._extend(False, run.length, view[run.offset : run.offset + run.length])
        return runs

    def digest(self) -> bytes:
        """The range digest (call once, after the last bytes)."""
        self._close_run()
        return self._records.digest()

    def _extend(self, zero: bool, length: int, data: memoryview | None = None) -> None:
        if self._run_zero is not zero:
            self._close_run()
            self._run_start, self._run_zero = self._position, zero
            self._run_hash = None if zero else xxhash.xxh3_128()
        if data is not None and self._run_hash is not None:
            self._run_hash.update(data)
        self._position += length

    def _close_run(self) -> None:
        length = self._position - self._run_start
        if self._run_zero is None or not length:
            return
        place = _PLACE.pack(self._run_start, length)
        if self._run_hash is None:
            self._records.update(b"Z" + place)
        else:
            self._records.update(b"D" + place + self._run_hash.digest())
        self._run_zero = None


def zero_range_digest(offset: int, length: int) -> bytes:
    """The digest of a range that is all zero (one zero run), e.g. a range CBT found unallocated."""
    return hashlib.sha256(b"Z" + _PLACE.pack(offset, length)).digest()


def combine(ranges: Iterable[tuple[int, int, bytes]]) -> str:
    """The disk checksum (hex) from ``(offset, length, range digest)`` of every range, in order."""
    total = hashlib.sha256()
    for offset, length, digest in ranges:
        total.update(_PLACE.pack(offset, length) + digest)
    return total.hexdigest()


def disk_checksum(data: bytes, range_size: int) -> str:
    """The checksum of a whole disk held in memory (the reference the workers' streaming result must equal)."""
    parts = []
    for offset in range(0, len(data), range_size):
        digest = RangeDigest(offset)
        piece = data[offset : offset + range_size]
        digest.add(piece)
        parts.append((offset, len(piece), digest.digest()))
    return combine(parts)
