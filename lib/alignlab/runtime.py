"""Process-level settings every job applies before it computes: threads, denormals, device."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch


def configure_torch(threads: int) -> None:
    """Use exactly the rule's thread count and flush float32 denormals on CPU.

    With another process busy on one of 2 cores, 2-thread steps slow 2-20x, so a job never takes
    more threads than its rule declares. Once the training loss reaches ~1e-6, float32 subnormals
    make every CPU step 4-5x slower; flushing them only changes values below 1.2e-38.
    """
    torch.set_num_threads(max(1, int(threads)))
    torch.set_flush_denormal(True)
    # torch.compile's worker pool would otherwise take every core while the other job trains.
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    keep_freed_memory()


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX = -1, -3, 32 * 2**20
_TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Keep freed memory in the process instead of handing it back to the OS (glibc only).

    A training step allocates and frees the same few MB-sized activations every step (every row
    chunk). By default glibc serves them by mmap or trims them from the heap's top once freed, so
    each step faults their pages in afresh: 2,362 minor page faults per step of the published
    model, about 5 ms of ~48 (measured 2026-12-02, one thread; 0.05 per step after this).
    Blocks up to 32 MiB now come from the heap and up to 1 GiB of freed memory stays mapped; the
    jobs peak near 1 GB anyway. Returns whether the allocator accepted both settings; elsewhere
    (macOS, musl) it is a no-op.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
        and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; everything also runs on a CPU-only machine."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but CUDA is not available here")
    return torch.device(device)
