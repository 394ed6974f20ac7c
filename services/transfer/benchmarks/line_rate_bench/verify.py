"""Checks that a copy holds exactly the source disk's bytes (a wrong copy voids the figure).

Compares the two files chunk by chunk; chunks that are a hole in both (``SEEK_DATA``) are
equal without reading, so a sparse copy of a sparse disk is checked at the cost of its data.
"""

import errno
import os
from pathlib import Path

CHUNK = 16 * 1024 * 1024


def first_difference(copy: Path, source: Path) -> str | None:
    """None when ``copy`` equals ``source`` byte for byte, else what differs."""
    size, copy_size = source.stat().st_size, copy.stat().st_size
    if copy_size != size:
        return f"the copy has {copy_size} bytes, the source {size}"
    a, b = bytearray(CHUNK), bytearray(CHUNK)
    with copy.open("rb", buffering=0) as left, source.open("rb", buffering=0) as right:
        offset = 0
        while offset < size:
            length = min(CHUNK, size - offset)
            data_at = min(_next_data(left.fileno(), offset, size), _next_data(right.fileno(), offset, size))
            if data_at >= offset + length:  # a hole in both: skip to where either has data
                if data_at >= size:
                    break
                offset = data_at - data_at % CHUNK
                continue
            got_a, got_b = os.preadv(left.fileno(), [a], offset), os.preadv(right.fileno(), [b], offset)
            if min(got_a, got_b) < length:
                return f"short read at byte {offset}"
            same = a == b if length == CHUNK else a[:length] == b[:length]  # bytearray == is a memcmp
            if not same:
                at = next(i for i in range(length) if a[i] != b[i])
                return f"the copy differs from the source at byte {offset + at}"
            offset += length
    return None


def _next_data(fd: int, offset: int, size: int) -> int:
    try:
        return os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as error:
        if error.errno == errno.ENXIO:  # no data after offset
            return size
        raise
