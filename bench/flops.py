"""FLOP accounting for the grokking step and this machine's fp32 matmul peak."""

from __future__ import annotations

import time

import torch

from alignlab.models import ModelConfig


def necessary_step_flops(cfg: ModelConfig, n_examples: int) -> float:
    """FLOPs a training step cannot avoid: W_O, MLP and unembedding at the final position.

    Forward matmuls cost 2 * rows * inner * cols; backward costs twice the forward (gradients
    with respect to inputs and weights). Per-token tables and attention scores are O(p), not
    O(batch), and left out, as are element-wise operations.
    """
    per_example = cfg.n_heads * cfg.d_head * cfg.d_model  # W_O
    per_example += 2 * cfg.d_model * cfg.d_mlp  # W_in and W_out
    per_example += cfg.d_model * cfg.d_vocab_out  # W_U
    return 3 * 2 * n_examples * per_example


def matmul_peak_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Best achieved fp32 GFLOP/s of a square matmul with torch's current thread count."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9
