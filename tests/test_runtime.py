"""Process settings every job applies: freed memory stays in the process (glibc)."""

import ctypes
import platform

import pytest
import torch

from alignlab.runtime import keep_freed_memory

BLOCK = 8 * 2**20  # an activation-sized block, above glibc's default 128 KiB mmap threshold


class MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (malloc.h, glibc >= 2.33)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd")
        + ("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def _mallinfo() -> MallInfo2:
    libc = ctypes.CDLL("libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("mallinfo2 needs glibc >= 2.33")
    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_large_block_comes_from_the_heap_and_stays_there_when_freed():
    assert keep_freed_memory()
    before = _mallinfo()
    block = torch.empty(BLOCK // 4).fill_(1.0)
    during = _mallinfo()
    assert during.hblkhd == before.hblkhd  # not a fresh mmap (whose pages fault in every time)
    del block
    after = _mallinfo()
    assert after.arena == during.arena  # the heap was not trimmed back to the OS
    assert after.fordblks >= BLOCK  # the freed block waits in the heap for the next step
