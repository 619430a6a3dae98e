"""The chunked forward-and-backward head equals plain autograd, and the fast model's training
loss equals its forward's."""

from __future__ import annotations

import pytest
import torch

from alignlab import fused_head
from alignlab.data import build_dataset
from alignlab.fused_head import fused_head_loss, reference_loss
from alignlab.models import FinalPositionTransformer, ModelConfig, final_position_loss, init_params

CFG = ModelConfig(p=23, d_model=32, n_heads=2, d_head=16, d_mlp=64)


def head_inputs(dtype: torch.dtype, n: int = 40, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(n, 32), (32, 64), (64,), (64, 32), (32,), (32, 23)]
    tensors = [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]
    labels = torch.randint(0, 23, (n,), generator=gen)
    return tensors, labels


def loss_and_grads(loss_fn, tensors, labels, weight: float = 1.0):
    for t in tensors:
        t.grad = None
    loss = loss_fn(*tensors, labels)
    (weight * loss).backward()
    return loss.detach(), [t.grad.clone() for t in tensors]


@pytest.mark.parametrize("chunk", [7, 40, 512])  # ragged last chunk, exact fit, one chunk
def test_fused_equals_autograd_in_float64(monkeypatch, chunk):
    monkeypatch.setattr(fused_head, "CPU_CHUNK_ROWS", chunk)
    tensors, labels = head_inputs(torch.float64)
    loss, grads = loss_and_grads(fused_head_loss, tensors, labels)
    ref_loss, ref_grads = loss_and_grads(reference_loss, tensors, labels)
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=0)
    for grad, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref, rtol=1e-10, atol=1e-13)


def test_fused_equals_autograd_in_float32_to_its_rounding(monkeypatch):
    monkeypatch.setattr(fused_head, "CPU_CHUNK_ROWS", 16)
    tensors, labels = head_inputs(torch.float32, n=200)
    loss, grads = loss_and_grads(fused_head_loss, tensors, labels)
    ref_loss, ref_grads = loss_and_grads(reference_loss, tensors, labels)
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(loss, ref_loss, rtol=50 * eps, atol=0)
    for grad, ref in zip(grads, ref_grads, strict=True):
        scale = ref.abs().max()
        assert (grad - ref).abs().max() <= 200 * eps * scale


def test_backward_scales_with_the_incoming_gradient():
    tensors, labels = head_inputs(torch.float64)
    _, grads = loss_and_grads(fused_head_loss, tensors, labels)
    _, tripled = loss_and_grads(fused_head_loss, tensors, labels, weight=3.0)
    for grad, big in zip(grads, tripled, strict=True):
        torch.testing.assert_close(big, 3 * grad, rtol=1e-14, atol=0)


@pytest.mark.parametrize("act_fn", ["relu", "gelu"])  # gelu takes the plain path
def test_model_loss_equals_loss_of_forward(act_fn):
    cfg = ModelConfig(**{**CFG.to_dict(), "act_fn": act_fn})
    params = {k: v.double() for k, v in init_params(cfg, seed=3).items()}
    a, b, c = build_dataset(cfg.p, "add", 0.5, 0).split(True)
    fast, plain = FinalPositionTransformer(cfg, params), FinalPositionTransformer(cfg, params)
    fast.loss(a, b, c).backward()
    final_position_loss(plain(a, b), c).backward()
    for (name, p_fast), p_plain in zip(fast.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p_fast.grad, p_plain.grad, rtol=1e-10, atol=1e-14, msg=name)
