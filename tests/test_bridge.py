"""Parity of the fast training model with the TransformerLens 4.x bridge, on one step.

Same weights in both: final-position logits and float64-loss gradients must agree to rounding.
The two are different computations (fused fast path vs TransformerLens modules), so they are
compared in float64 (both models keep the dtype of their weights), and in fp32 only at a
tolerance derived from fp32's eps: which kernels round how depends on the CPU. Never whole
training curves (fp32 rounding alone moves the grokking step).
"""

from __future__ import annotations

import pytest
import torch

from alignlab import bridge as B
from alignlab.checkpoints import save_weights
from alignlab.models import (
    FinalPositionTransformer,
    ModelConfig,
    ModularDecoder,
    build_model,
    final_position_loss,
    init_params,
)
from alignlab.testing import assert_close_fp

P = 23
CFG = ModelConfig(p=P, d_model=32, n_heads=4, d_head=8, d_mlp=64)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def all_pairs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a, b = (x.ravel() for x in torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij"))
    return a, b, (a + b) % P


def trained_params(cfg: ModelConfig, steps: int = 5) -> dict[str, torch.Tensor]:
    """init_params moved by a few AdamW steps, so that biases and every weight are non-trivial."""
    model = FinalPositionTransformer(cfg, init_params(cfg, seed=1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1.0, betas=(0.9, 0.98))
    a, b, c = all_pairs()
    for _ in range(steps):
        opt.zero_grad()
        final_position_loss(model(a, b), c).backward()
        opt.step()
    return model.params()


@pytest.fixture(scope="module")
def params() -> dict[str, torch.Tensor]:
    found = trained_params(CFG)
    assert found["blocks.0.mlp.b_in"].abs().max() > 1e-3  # the biases are really exercised
    return found


@pytest.fixture(scope="module")
def params64(params) -> dict[str, torch.Tensor]:
    return {name: value.double() for name, value in params.items()}


def assert_logits_close(actual: torch.Tensor, expected: torch.Tensor, name: str, layers=1) -> None:
    """Logits along two paths: reductions up to d_mlp long, about four chained per layer."""
    assert actual.dtype == expected.dtype, name
    assert_close_fp(
        actual, expected, n=CFG.d_mlp, depth=4 * layers, dtype=expected.dtype, name=name
    )


def assert_grads_close(actual: torch.Tensor, expected: torch.Tensor, name: str, layers=1) -> None:
    """Weight gradients: sums over all P^2 pairs of the backward pass of those reductions."""
    assert actual.dtype == expected.dtype, name
    assert_close_fp(actual, expected, n=P * P, depth=4 * layers, dtype=expected.dtype, name=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logits_match_fast_model(params, dtype):
    params = {name: value.to(dtype) for name, value in params.items()}
    a, b, _ = all_pairs()
    expected = FinalPositionTransformer(CFG, params)(a, b)
    with torch.no_grad():
        got = B.final_logits(B.to_bridge(params, CFG), a, b)
    assert got.shape == (P * P, P)
    assert_logits_close(got, expected.detach(), "logits")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_match_fast_model(params, dtype):
    params = {name: value.to(dtype) for name, value in params.items()}
    a, b, c = all_pairs()
    fast = FinalPositionTransformer(CFG, params)
    final_position_loss(fast(a, b), c).backward()
    bridge = B.to_bridge(params, CFG)
    loss = B.final_loss(bridge, a, b, c)
    assert loss.dtype == torch.float64
    loss.backward()

    grads = B.tl_grads(bridge, CFG)
    for name, param in fast.named_parameters():
        assert grads[name] is not None, f"{name}: no gradient in the bridge"
        assert grads[name].shape == param.shape
        assert_grads_close(grads[name], param.grad, name)

    # Every trainable bridge parameter is one of ours: nothing else could be trained.
    mapped = {id(p) for p, _ in B.tl_parameters(bridge, CFG).values()}
    trainable = {id(p) for p in bridge.parameters() if p.requires_grad}
    assert trainable == mapped
    state = bridge.state_dict(keep_vars=True)
    for key in ("blocks.0.attn.q.bias", "blocks.0.attn.o.bias", "unembed.bias"):
        assert not state[key].requires_grad and state[key].grad is None
        assert torch.count_nonzero(state[key]) == 0


def test_weights_round_trip(params):
    back = B.tl_weights(B.to_bridge(params, CFG), CFG)
    assert back.keys() == params.keys()
    for name, value in params.items():
        assert torch.equal(back[name], value), name


def test_attn_rate_hook_matches_fast_model(params64):
    params = params64
    cfg = ModelConfig(p=P, d_model=32, n_heads=4, d_head=8, d_mlp=64, attn_rate=0.3)
    a, b, _ = all_pairs()
    expected = FinalPositionTransformer(cfg, params)(a, b).detach()
    bridge = B.to_bridge(params, cfg)
    with torch.no_grad():
        got = B.final_logits(bridge, a, b)
        plain = B.final_logits(B.to_bridge(params, CFG), a, b)
        _, cache = bridge.run_with_cache(B.tokens(a[:5], b[:5], P))
    assert_logits_close(got, expected, "logits at attn_rate 0.3")
    assert not torch.allclose(plain, expected, rtol=1e-3, atol=1e-4)  # the rate matters here
    # The cached pattern is the mixed one the model uses: still causal rows summing to 1.
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert torch.allclose(pattern.sum(-1), torch.ones(5, cfg.n_heads, 3, dtype=pattern.dtype))
    assert torch.count_nonzero(pattern.triu(diagonal=1)) == 0
    assert (pattern[:, :, 2] >= (1 - cfg.attn_rate) / 3 - 1e-7).all()


def test_hook_names_and_shapes(params):
    a, b, _ = all_pairs()
    bridge = B.to_bridge(params, CFG)
    toks = B.tokens(a[:7], b[:7], P)
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(toks)
    assert logits.shape == (7, 3, P)

    assert torch.equal(cache["hook_embed"], params["embed.W_E"][toks])

    pattern = cache["blocks.0.attn.hook_pattern"]
    assert pattern.shape == (7, CFG.n_heads, 3, 3)
    assert torch.allclose(pattern.sum(-1), torch.ones(7, CFG.n_heads, 3))
    assert torch.count_nonzero(pattern.triu(diagonal=1)) == 0  # causal

    post = cache["blocks.0.mlp.hook_post"]
    assert post.shape == (7, 3, CFG.d_mlp)
    assert torch.equal(post, torch.relu(cache["blocks.0.mlp.hook_pre"]))
    assert (post > 0).any()


def test_checkpoint_loads_into_bridge(params, tmp_path):
    path = tmp_path / "step_000042.safetensors"
    save_weights(params, path, step=42, model_cfg=CFG.to_dict())
    bridge, step, cfg = B.load_bridge(path)
    assert (step, cfg) == (42, CFG)
    a, b, _ = all_pairs()
    with torch.no_grad():
        got = B.final_logits(bridge, a, b)
        expected = B.final_logits(B.to_bridge(params, CFG), a, b)
    assert torch.equal(got, expected)
    assert not bridge.training


def test_rejects_mismatched_params(params):
    bad = dict(params)
    bad["blocks.0.attn.W_Q"] = bad["blocks.0.attn.W_Q"][:, :, :4]
    with pytest.raises(ValueError, match="W_Q"):
        B.to_bridge(bad, CFG)


# ---- the general decoder (Power et al.'s 2-layer, pre-LN model) ---------------------------------
DEEP = ModelConfig(p=P, d_model=32, n_heads=4, d_head=8, d_mlp=64, n_layers=2, normalization="LN")


def test_general_decoder_equals_fast_model_at_one_layer(params64):
    """The full-sequence reference path and the fast path compute the same function."""
    a, b, c = all_pairs()
    fast, general = FinalPositionTransformer(CFG, params64), ModularDecoder(CFG, params64)
    assert_logits_close(general(a, b).detach(), fast(a, b).detach(), "logits")
    final_position_loss(fast(a, b), c).backward()
    final_position_loss(general(a, b), c).backward()
    for name, param in fast.named_parameters():
        assert_grads_close(general.get_parameter(name).grad, param.grad, name)


def test_two_layer_decoder_matches_bridge():
    gen = torch.Generator().manual_seed(5)
    params = {  # LayerNorm scales and biases away from 1 and 0, so that they are exercised
        name: (value + 0.1 * torch.randn(value.shape, generator=gen)).double()
        for name, value in init_params(DEEP, seed=4).items()
    }
    model = build_model(DEEP, params)
    assert isinstance(model, ModularDecoder)
    a, b, c = all_pairs()
    final_position_loss(model(a, b), c).backward()
    bridge = B.to_bridge(params, DEEP)
    with torch.no_grad():
        assert_logits_close(B.final_logits(bridge, a, b), model(a, b), "logits", layers=2)
    B.final_loss(bridge, a, b, c).backward()
    grads = B.tl_grads(bridge, DEEP)
    assert set(grads) == {name for name, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        assert_grads_close(grads[name], param.grad, name, layers=2)


def test_fast_model_refuses_deeper_configs():
    with pytest.raises(ValueError, match="n_layers 2"):
        FinalPositionTransformer(DEEP, init_params(DEEP, 0))
    with pytest.raises(ValueError, match="attn_rate"):
        ModelConfig(p=P, n_layers=2, attn_rate=0.5)
