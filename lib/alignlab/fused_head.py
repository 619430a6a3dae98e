"""The one-layer model's MLP, unembedding and float64 cross-entropy, forward and backward in one
pass over row chunks: the training step's fast path on a CPU.

Why chunks: at the full batch (3,830 examples in the published config) each [batch, d_mlp]
activation is 7.8 MB, larger than a core's L2 cache, and an unfused step writes and re-reads
several of them. Measured on a 2-core Xeon at one thread: the same [3830, 128] @ [128, 512]
matmul takes 2.9 ms with its operands in cache and 5.9 ms after other work has evicted them
(bench/step_time.py times the whole step). Here each chunk of rows runs forward and then at once
backward, while its activations are still in cache, and adds its share to the weight gradients.

The gradients are therefore computed in `forward` and handed to autograd in `backward`, scaled
by the incoming gradient; the forward's value is the loss only. The math is that of the
autograd path (`reference_loss`): float64 log-softmax, gradient (softmax - one-hot) / n cast to
the weights' dtype, ReLU. Only the order of the sums over rows differs (tests/test_fused_head.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# A chunk's two [rows, d_mlp] fp32 activations (pre-activation gradient and post-ReLU) fit in
# 4 MiB: 1,024 rows at d_mlp 512. Measured at one thread (2026-12-02, 2-core Xeon), ms per step
# at chunks of 256 / 512 / 1,024 rows / the whole batch: 48.5 / 46.8 / 46.7 / 54.0 for the
# published model (3,830 rows, d_mlp 512) and 11.1 / 10.1 / 9.5 / 9.0 for the scaling sweeps'
# laptop model (1,740 rows, d_mlp 256), where smaller chunks only add per-chunk overhead.
CPU_CHUNK_BYTES = 4 * 2**20
CPU_CHUNK_ROWS: int | None = None  # a fixed row count instead (tests: ragged and exact fits)


def chunk_rows(device: torch.device, n_rows: int, d_mlp: int) -> int:
    """Rows per chunk: cache-sized on a CPU; elsewhere (a GPU) the whole batch at once."""
    if device.type != "cpu":
        return n_rows
    return CPU_CHUNK_ROWS or max(64, CPU_CHUNK_BYTES // (2 * 4 * d_mlp))


def reference_loss(x, W_in, b_in, W_out, b_out, W_U, labels) -> torch.Tensor:
    """The same loss by plain autograd (for tests and for non-ReLU models)."""
    post = F.relu(x @ W_in + b_in)
    logits = (x + post @ W_out + b_out) @ W_U
    return F.cross_entropy(logits.double(), labels)


class FusedHeadLoss(torch.autograd.Function):
    """loss = mean float64 cross-entropy of relu(x W_in + b_in) W_out + b_out + x, unembedded."""

    @staticmethod
    def forward(ctx, x, W_in, b_in, W_out, b_out, W_U, labels):
        n = x.shape[0]
        grads = [torch.zeros_like(w) for w in (W_in, b_in, W_out, b_out, W_U)]
        g_in, gb_in, g_out, gb_out, g_U = grads
        g_x = []
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        step = chunk_rows(x.device, n, W_in.shape[1])
        for start in range(0, n, step):
            xc, yc = x[start : start + step], labels[start : start + step]
            post = torch.addmm(b_in, xc, W_in).relu_()
            resid = torch.addmm(xc + b_out, post, W_out)
            logp = (resid @ W_U).double().log_softmax(-1)
            total -= logp.gather(1, yc[:, None]).sum()
            g_logits = logp.exp_()  # softmax, then minus the one-hot label, over n
            g_logits[torch.arange(len(yc), device=x.device), yc] -= 1
            g_logits = g_logits.div_(n).to(x.dtype)
            g_U.addmm_(resid.t(), g_logits)
            g_resid = g_logits @ W_U.t()
            gb_out += g_resid.sum(0)
            g_out.addmm_(post.t(), g_resid)
            g_pre = torch.ops.aten.threshold_backward(g_resid @ W_out.t(), post, 0)
            gb_in += g_pre.sum(0)
            g_in.addmm_(xc.t(), g_pre)
            g_x.append(g_resid.addmm_(g_pre, W_in.t()))
        ctx.save_for_backward(torch.cat(g_x), *grads)
        return total / n

    @staticmethod
    def backward(ctx, grad_loss):
        grads = ctx.saved_tensors
        if grad_loss.item() != 1.0:  # loss.backward() passes exactly 1: no pass over g_x
            grads = tuple(g * grad_loss.to(g.dtype) for g in grads)
        return (*grads, None)


def fused_head_loss(x, W_in, b_in, W_out, b_out, W_U, labels) -> torch.Tensor:
    """The loss (float64 scalar) whose backward gives every input's gradient; ReLU only."""
    return FusedHeadLoss.apply(x, W_in, b_in, W_out, b_out, W_U, labels)
