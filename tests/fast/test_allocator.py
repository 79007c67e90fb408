"""The command's allocator setting: freed large blocks are reused, not faulted in afresh, and
what the allocator holds freed is counted."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from artstyle.allocator import free_heap_bytes, keep_freed_memory

_CHILD = """
import resource, sys
from artstyle.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
bytearray(64 << 20)  # allocated, written and freed once, as at a run's first iteration
before = faults()
for _ in range(5):
    bytearray(64 << 20)
print(faults() - before)
"""
_GLIBC = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt and mallinfo2")


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@_GLIBC
def test_a_block_freed_and_allocated_again_is_not_faulted_in_again() -> None:
    plain, kept = _faults("plain"), _faults("keep")
    assert plain > 5 * (64 << 20) // 4096 // 2  # each 64 MiB block mapped afresh: a fault a page
    assert kept < plain / 20


@_GLIBC
def test_memory_freed_in_the_heap_is_counted() -> None:
    blocks = [bytearray(64 << 10) for _ in range(100)]  # 64 KiB each: below any mmap threshold
    held = free_heap_bytes()
    del blocks[:-1]  # the last keeps the others' place from the heap's top, where it may be trimmed
    assert free_heap_bytes() >= held + 90 * (64 << 10)


def test_elsewhere_the_allocator_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
    assert free_heap_bytes() == 0
