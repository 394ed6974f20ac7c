"""Keeping a worker's resident memory at what its buffers use.

glibc's ``malloc`` serves large blocks with ``mmap``, but after the first such block is freed
it raises its threshold (up to 32 MiB) and serves later chunk-sized buffers from its heap and
per-thread arenas, which keep freed memory resident: a worker's RSS would creep above what it
holds. Setting the threshold explicitly (``mallopt(M_MMAP_THRESHOLD)``) turns that adjustment
off, so every buffer above it is mapped on its own and returned to the system when freed.
"""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024


def return_large_buffers(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where this is not glibc."""
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
