"""Parity of the plain reward model with a TransformerLens 4.x bridge holding the same weights.

The bridge (`TransformerBridge.boot_native`) runs the same pre-LN transformer with d_vocab_out = 1:
its "logit" at the EOS position is the reward. Its attention biases and unembed bias (which our
model lacks) are zero. One forward and one backward, never training curves (fp32 rounding alone
moves them).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alignlab.bridge import tl_grads, to_bridge
from alignlab.preference.env import Env, EnvConfig
from alignlab.preference.model import RewardModel, RMConfig, init_params
from alignlab.testing import assert_close_fp

ENV = EnvConfig(repeat_penalty=30.0)
CFG = RMConfig(d_vocab=ENV.d_vocab, n_ctx=ENV.n_ctx, d_model=16, n_layers=2, n_heads=2, d_mlp=32)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    params = init_params(CFG, seed=2)
    gen = torch.Generator().manual_seed(1)
    for name, value in params.items():  # non-trivial LN and MLP biases
        if name.rsplit(".", 1)[1] in ("w", "b", "b_in", "b_out"):
            params[name] = value + 0.1 * torch.randn(value.shape, generator=gen)
    model = RewardModel(CFG, params).eval()
    env = Env(ENV)
    batch = env.sample(np.random.default_rng(0), 16)
    tokens, eos = (torch.from_numpy(x) for x in env.tokens(batch))
    return model, to_bridge(model.params(), CFG), tokens, eos


def test_rewards_match_bridge_at_eos(setup):
    model, bridge, tokens, eos = setup
    with torch.no_grad():
        ours = model(tokens, eos)
        logits = bridge(tokens, return_type="logits")  # [batch, pos, 1]
        theirs = logits[torch.arange(len(eos)), eos, 0]
    assert_close_fp(ours, theirs, n=CFG.d_mlp, depth=8)  # fp32 along two paths


def test_gradients_match_bridge(setup):
    model, bridge, tokens, eos = setup
    half = len(eos) // 2
    model.zero_grad()
    r = model(tokens, eos)
    loss = -F.logsigmoid(r[:half] - r[half:]).mean()
    loss.backward()
    bridge.zero_grad()
    logits = bridge(tokens, return_type="logits")[torch.arange(len(eos)), eos, 0]
    (-F.logsigmoid(logits[:half] - logits[half:]).mean()).backward()
    theirs = tl_grads(bridge, CFG)  # every parameter, LayerNorms included, in our layout
    # fp32 along two paths, at the backward signal's scale: ln_final.b's gradient is zero up to
    # rounding (each pair's two reward gradients cancel), so its own size is no scale
    scale = max(param.grad.abs().max().item() for param in model.parameters())
    for name, param in model.named_parameters():
        assert_close_fp(param.grad, theirs[name], n=tokens.numel(), depth=8, scale=scale, name=name)
