"""Keep a training step's freed buffers in the process for the next step.

A step at the book's size allocates and frees a dozen buffers of about 1 MB (the hidden
states, their gradients, the gathered inputs). Depending on where glibc's dynamic
thresholds happen to settle, its malloc returns such memory to the kernel when it is freed
(or maps it afresh), and the next step pays for the same pages again: 0 to 170 page
faults per step between processes, and at two threads a 5.5 ms step became 5.1 ms without
them. Fixed mmap and trim thresholds let the heap keep those pages in every process, which
is what a caching allocator (or ``LD_PRELOAD``-ing jemalloc/tcmalloc, the usual PyTorch CPU
advice) achieves.

The settings are process-wide and only change when memory goes back to the kernel, never
what a program computes. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc caps the mmap threshold at 32 MiB on 64-bit; blocks above it are still mapped
MMAP_THRESHOLD = 32 << 20
# free memory at the top of the heap beyond this goes back to the kernel
TRIM_THRESHOLD = 256 << 20

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Apply the thresholds once per process; True where they took effect (glibc)."""
    global _applied
    if _applied is None:
        _applied = _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(
            _M_TRIM_THRESHOLD, TRIM_THRESHOLD
        )
    return _applied


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
