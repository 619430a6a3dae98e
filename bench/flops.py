"""FLOP accounting for the grokking step and this machine's fp32 matmul peak."""

from __future__ import annotations

import time

import torch

from alignlab.models import ModelConfig


def necessary_step_flops(cfg: ModelConfig, n_examples: int) -> float:
    """FLOPs a training step cannot avoid: the MLP and unembedding at the final position.

    Forward matmuls cost 2 * rows * inner * cols; backward costs twice the forward (gradients
    with respect to inputs and weights). Per-token tables (attention scores, and each head's
    value times W_O, which the fast model gathers per token) are O(p), not O(batch), and left
    out, as are element-wise operations.
    """
    per_example = 2 * cfg.d_model * cfg.d_mlp  # W_in and W_out
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


def matmul_floor_ms(cfg: ModelConfig, n_examples: int, chunk: int, repeats: int = 5) -> float:
    """Best time of the necessary matmuls alone, at the fast step's shapes (row chunks of the
    MLP and unembedding, forward and backward), on random data: what a step would cost if
    everything but these matmuls took no time."""
    gen = torch.Generator().manual_seed(0)
    m, k, v = cfg.d_model, cfg.d_mlp, cfg.d_vocab_out
    W_in, W_out, W_U = (torch.randn(s, generator=gen) for s in ((m, k), (k, m), (m, v)))
    # One chunk's operands serve every chunk: in the step each chunk's activations are fresh in
    # cache when its matmuls run, and so they are here.
    x, hidden, g_logits = (torch.randn(chunk, n, generator=gen) for n in (m, k, v))
    sizes = [min(chunk, n_examples - s) for s in range(0, n_examples, chunk)]
    data = [(x[:r], hidden[:r], g_logits[:r]) for r in sizes]
    grads = [torch.zeros(m, k), torch.zeros(k, m), torch.zeros(m, v)]

    def step():
        for x, hidden, g_logits in data:
            torch.mm(x, W_in), torch.mm(hidden, W_out), torch.mm(x, W_U)  # forward
            g_x = torch.mm(g_logits, W_U.t())  # backward: inputs, then weights
            g_hidden = torch.mm(g_x, W_out.t())
            torch.mm(g_hidden, W_in.t())
            grads[2].addmm_(x.t(), g_logits)
            grads[1].addmm_(hidden.t(), g_x)
            grads[0].addmm_(x.t(), g_hidden)

    step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return 1000 * best
