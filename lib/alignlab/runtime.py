"""Process-level settings every job applies before it computes: threads, denormals, device."""

from __future__ import annotations

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


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; everything also runs on a CPU-only machine."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but CUDA is not available here")
    return torch.device(device)
