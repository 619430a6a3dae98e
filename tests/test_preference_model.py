"""The reward model reads its scalar at EOS (not the last, padded position); TRL metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.preference.env import Env, EnvConfig, make_pairs
from alignlab.preference.model import RewardModel, RMConfig, init_params, score
from alignlab.preference.train import pair_metrics, split_pairs
from alignlab.testing import assert_close_fp

ENV = EnvConfig(repeat_penalty=30.0)
CFG = RMConfig(d_vocab=ENV.d_vocab, n_ctx=ENV.n_ctx, d_model=16, n_layers=2, n_heads=2, d_mlp=32)


@pytest.fixture(scope="module")
def model():
    return RewardModel(CFG, init_params(CFG, seed=3)).eval()


def _sample(n=8, seed=0):
    env = Env(ENV)
    batch = env.sample(np.random.default_rng(seed), n)
    tokens, eos = env.tokens(batch)
    return torch.from_numpy(tokens), torch.from_numpy(eos)


def test_reward_read_at_eos_ignores_padding(model):
    tokens, eos = _sample()
    with torch.no_grad():
        batched = model(tokens, eos)
        for i in range(len(eos)):
            alone = model(tokens[i : i + 1, : eos[i] + 1], eos[i : i + 1])  # no padding at all
            # fp32, batched vs alone: 2 layers of reductions up to d_mlp, at the rewards' scale
            assert_close_fp(batched[i], alone[0], n=32, depth=8, scale=batched.abs().max().item())
        # whatever follows EOS (padding or garbage) cannot change the reward
        garbage = tokens.clone()
        for i in range(len(eos)):
            garbage[i, eos[i] + 1 :] = 3
        assert torch.allclose(model(garbage, eos), batched, atol=1e-6)
        # and it is the EOS position, not the final (padded) position, that is read
        all_pos = model.all_rewards(tokens)
        assert_close_fp(batched, all_pos[torch.arange(len(eos)), eos], n=32, depth=8)
        short = eos < tokens.shape[1] - 1
        assert short.any()
        assert not torch.allclose(batched[short], all_pos[short, -1], atol=1e-3)


@pytest.mark.parametrize("normalization", ["LN", "none"])
def test_last_block_at_eos_only_equals_the_full_sequence_in_float64(normalization):
    """`residual(at=eos)` runs the last block at EOS alone; values and gradients are those of
    the full-sequence pass read at EOS."""
    cfg = RMConfig(**{**CFG.to_dict(), "normalization": normalization})
    params = {k: v.double() for k, v in init_params(cfg, seed=5).items()}
    fast, full = RewardModel(cfg, params), RewardModel(cfg, params)
    tokens, eos = _sample(12, seed=2)
    rows = torch.arange(len(eos))
    fast(tokens, eos).sum().backward()
    full.all_rewards(tokens)[rows, eos].sum().backward()
    for (name, p_fast), p_full in zip(fast.named_parameters(), full.parameters(), strict=True):
        torch.testing.assert_close(p_fast.grad, p_full.grad, rtol=1e-10, atol=1e-13, msg=name)
    assert len(set(eos.tolist())) > 1  # rows read at different positions


def test_score_matches_forward_in_order(model):
    tokens, eos = _sample(50, seed=1)
    with torch.no_grad():
        direct = model(tokens, eos).double()
    assert_close_fp(score(model, tokens, eos, batch_size=7), direct, n=32, depth=8)  # chunked


def test_trl_metrics_known_values():
    m = pair_metrics(torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 3.0]))
    assert m["accuracy"] == pytest.approx(1 / 3)  # strict >: the tie does not count
    assert m["margin"] == pytest.approx((1 + 0 - 2) / 3)
    assert m["mean_reward"] == pytest.approx(7 / 6)
    assert (m["min_reward"], m["max_reward"]) == (0.0, 3.0)


def test_training_learns_gold_preferences():
    torch.manual_seed(0)
    pairs = make_pairs(Env(ENV), 1200, seed=0)
    pairs = {k: v.astype(np.int64) if v.dtype == np.uint8 else v for k, v in pairs.items()}
    train, test = split_pairs(pairs, 1200, 0.1)
    assert len(test["chosen_eos"]) == 120
    cfg = RMConfig(d_vocab=ENV.d_vocab, n_ctx=ENV.n_ctx, d_model=8, n_layers=1, n_heads=1, d_mlp=16)
    model = RewardModel(cfg, init_params(cfg, 0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(150):
        idx = torch.arange(step * 64, step * 64 + 64) % len(train["chosen_eos"])
        r_c = model(train["chosen"][idx], train["chosen_eos"][idx])
        r_r = model(train["rejected"][idx], train["rejected_eos"][idx])
        loss = -torch.nn.functional.logsigmoid(r_c - r_r).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        m = pair_metrics(
            model(test["chosen"], test["chosen_eos"]), model(test["rejected"], test["rejected_eos"])
        )
    assert m["accuracy"] > 0.6
