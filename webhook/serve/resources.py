"""What a worker asks of its process: file descriptors for a flood of connections, and memory
given back after large requests (webhook/serve/worker.py). glibc only for the memory part; a
no-op elsewhere."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
from typing import Any

# File descriptors kept free for everything else a worker opens (metrics files, the API watch).
SPARE_FDS = 64


def connection_cap(configured: int) -> int:
    """Raise the soft file limit to the hard one (the usual 1024 is too few for a flood of idle
    sockets) and keep the connection cap under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = configured + 4 * SPARE_FDS if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
            soft = max(soft, target)
        except (ValueError, OSError):
            pass
    return max(1, min(configured, soft - SPARE_FDS))


_LIBC: list[Any] = []
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MMAP_THRESHOLD_BYTES = 1024 * 1024


def _libc() -> Any:
    if not _LIBC:
        name = ctypes.util.find_library("c")
        _LIBC.append(ctypes.CDLL(name) if name else None)
    return _LIBC[0]


def pin_mmap_threshold() -> None:
    """glibc serves allocations over its mmap threshold from their own mappings, returned to the
    system on free; but after the first such free it raises the threshold (up to 32 MiB), and
    the next request bodies of a few MiB land on the heap, which it does not shrink. Pinning
    the threshold at 1 MiB keeps every large body's memory returnable (mallopt(3))."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def give_memory_back() -> None:
    """After a large request: collect what cycles it left and hand free heap pages back to the
    system (glibc keeps them otherwise; the worker's RSS would stay at its peak)."""
    gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
