"""The C allocator of a process that runs pictures (Linux with glibc; elsewhere nothing).

glibc's ``malloc`` maps every block above its threshold (32 MiB at most) afresh from the
kernel and gives it back when it is freed. A run frees and allocates the same large tensors
at every iteration (at 512x384, each of VGG19's first activations and their gradients is
50 MB), so each of them is faulted in again page by page: some 25,000 to 55,000 page faults
an iteration, 4-5 s of system time in a default run on a 2-core EPYC. Served from the heap
and kept there once freed (:func:`keep_freed_memory`), the same blocks are reused: no faults
after the first iteration. The peak memory stays the same; what the process freed is
returned to the system when it exits, not before, and counts as available to the next run
in it (:func:`free_heap_bytes`, as PyTorch's cache does on a GPU). The library leaves the
allocator alone: the command's own process, which runs nothing else, asks for this.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_SETTINGS = (
    (_M_MMAP_MAX, 0),  # no block from mmap: all from the heap, where freed blocks are reused
    (_M_TRIM_THRESHOLD, 2**31 - 1),  # keep freed memory at the heap's top instead of returning it
    (_M_TOP_PAD, 64 << 20),  # grow the heap 64 MiB beyond each request: fewer system calls
)


_MALLINFO2 = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2.split()]  # malloc.h's struct mallinfo2


def _libc() -> ctypes.CDLL | None:
    """The C library this process already runs on, where it is one with glibc's calls."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep and reuse freed memory; whether it agreed (False on other
    systems and C libraries, which are left as they are)."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in _SETTINGS)


def free_heap_bytes() -> int:
    """Bytes the C allocator holds freed, to hand out again before it asks the system for
    more (glibc's ``mallinfo2``, 2.33 and later; 0 elsewhere)."""
    mallinfo2 = getattr(_libc(), "mallinfo2", None)
    if mallinfo2 is None:
        return 0
    mallinfo2.argtypes, mallinfo2.restype = (), _MallInfo2
    return int(mallinfo2().fordblks)
