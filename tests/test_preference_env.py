"""The synthetic preference environment: determinism, token layout, the gold reward's terms,
labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.preference.env import Batch, Env, EnvConfig, make_pairs, make_pool
from alignlab.preference.train import split_pairs

CFG = EnvConfig(repeat_penalty=30.0)


def test_gold_is_deterministic_by_seed():
    a = make_pool(Env(CFG), 3, 200, seed=5)
    b = make_pool(Env(CFG), 3, 200, seed=5)
    np.testing.assert_array_equal(a["tokens"], b["tokens"])
    np.testing.assert_array_equal(a["gold"], b["gold"])
    c = make_pool(Env(EnvConfig(repeat_penalty=30.0, seed=1)), 3, 200, seed=5)
    assert not np.array_equal(a["gold"], c["gold"])  # another environment, another gold


def test_token_layout():
    env = Env(CFG)
    batch = Batch(
        prompt=np.array([[CFG.n_tokens + 1, CFG.n_tokens + 2, CFG.pad, CFG.pad]]),
        prompt_len=np.array([2]),
        completion=np.array([[5, 6, 7] + [0] * (CFG.len_max - 3)]),
        completion_len=np.array([3]),
    )
    tokens, eos = env.tokens(batch)
    expected = [CFG.n_tokens + 1, CFG.n_tokens + 2, CFG.sep, 5, 6, 7, CFG.eos]
    assert tokens[0, :7].tolist() == expected
    assert eos[0] == 6
    assert (tokens[0, 7:] == CFG.pad).all()
    assert tokens.shape[1] == CFG.n_ctx


def test_gold_terms_by_hand():
    env = Env(CFG)
    comp = np.zeros((2, CFG.len_max), dtype=np.int64)
    comp[0, :4] = [3, 3, 9, 3]  # token 3 three times: penalised
    comp[1, :4] = [3, 3, 9, 4]
    prompt = np.array([[CFG.n_tokens + 1, CFG.n_tokens + 2, CFG.pad, CFG.pad]] * 2)
    batch = Batch(prompt, np.array([2, 2]), comp, np.array([4, 4]))
    parts = env.gold_parts(batch)
    assert parts["repeated"].tolist() == [1.0, 0.0]
    assert parts["repeat"][0] == -CFG.repeat_penalty
    cls = 1 % CFG.n_classes
    v = env.values[cls]
    assert parts["tokens"][1] == pytest.approx(v[3] * 2 + v[9] + v[4])
    assert parts["length"][0] == pytest.approx(-CFG.length_coef * (4 - CFG.length_opt) ** 2)


def test_penalty_is_rare_in_base_samples():
    pool = make_pool(Env(CFG), 8, 2000, seed=0)
    assert 0.03 < pool["repeated"].mean() < 0.10  # about 6% with 64 tokens, 1-20 long


def test_star_counts_for_its_first_uses_then_costs():
    """star_limit 1, cost 16: one star adds its value, each further use costs 16 instead (the
    tokens' term of 0, 1, 2, 3 stars, by hand); star_limit 0 keeps the old gold exactly."""
    cfg = EnvConfig(n_tokens=32, len_max=12, n_star=1, star_value=8.0, star_limit=1,
                    star_excess_cost=16.0, repeat_penalty=0.0)  # fmt: skip
    env = Env(cfg)
    cls = 1 % cfg.n_classes
    star = int(env.stars[cls, 0])
    other = (star + 1) % cfg.n_tokens
    v = env.values[cls]
    assert v[star] > 5 and star == int(np.argmax(v))  # the star: worth ~ +8 more than the rest
    comp = np.full((4, cfg.len_max), other, dtype=np.int64)
    for k in range(4):
        comp[k, [1, 3, 5][:k]] = star  # 0, 1, 2, 3 stars, apart, among 6 tokens
    prompt = np.array([[cfg.n_tokens + 1, cfg.n_tokens + 2, cfg.pad, cfg.pad]] * 4)
    parts = env.gold_parts(Batch(prompt, np.full(4, 2), comp, np.full(4, 6)))
    expected = [6 * v[other] + k * (v[star] - v[other]) for k in (0, 1)] + [
        (6 - k) * v[other] + v[star] - 16.0 * (k - 1) for k in (2, 3)
    ]
    np.testing.assert_allclose(parts["tokens"], expected, rtol=1e-12)
    assert parts["star_excess"].tolist() == [0, 0, 1, 2]
    uncapped = Env(EnvConfig(n_tokens=32, len_max=12, n_star=1, star_value=8.0))
    pool = make_pool(uncapped, 2, 300, seed=0)
    assert (pool["star_excess"] == 0).all()
    old = Env(EnvConfig(n_tokens=32, len_max=12, n_star=1, star_value=8.0, star_limit=0,
                        star_excess_cost=16.0))  # fmt: skip
    np.testing.assert_array_equal(make_pool(old, 2, 300, seed=0)["gold"], pool["gold"])


def test_pairs_labels():
    env = Env(CFG)
    pairs = make_pairs(env, 500, seed=0)
    assert (pairs["chosen_gold"] >= pairs["rejected_gold"]).all()
    flipped = make_pairs(env, 2000, seed=0, label="flip", flip_rate=0.25)
    wrong = (flipped["chosen_gold"] < flipped["rejected_gold"]).mean()
    assert 0.2 < wrong < 0.3
    bt = make_pairs(env, 2000, seed=0, label="bradley_terry", temperature=1.0)
    assert 0.5 < (bt["chosen_gold"] >= bt["rejected_gold"]).mean() < 1.0
    # the data-size sweep takes prefixes of one set: nested sizes, last 10% held out
    small_train, small_test = split_pairs(pairs, 100, 0.1)
    big_train, _ = split_pairs(pairs, 500, 0.1)
    assert torch.equal(small_train["chosen"], big_train["chosen"][:90])
    assert torch.equal(small_test["chosen"], big_train["chosen"][90:100])
