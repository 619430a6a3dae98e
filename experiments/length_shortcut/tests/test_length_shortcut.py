"""The length shortcut experiment: the length-bias option of the pairs, the evaluation sets and the
measures of experiments.length_shortcut.shortcut on constructions with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.config import ConfigError, load_experiment, load_yaml, validate
from alignlab.preference.env import Env, EnvConfig, make_pairs
from alignlab.preference.model import RewardModel, RMConfig, init_params
from alignlab.testing import assert_close_fp
from experiments.length_shortcut import shortcut as S
from experiments.length_shortcut.experiment import longer_wins_fraction

ENV = EnvConfig(repeat_penalty=30.0)


@pytest.fixture(scope="module")
def env():
    return Env(ENV)


# ----- the length-bias option of make_pairs ------------------------------------------------------
def test_length_bias_zero_changes_nothing(env):
    plain = make_pairs(env, 2000, seed=3)
    zero = make_pairs(env, 2000, seed=3, length_bias=0.0)
    for key in plain:
        np.testing.assert_array_equal(plain[key], zero[key])
    assert (zero["chosen_gold"] >= zero["rejected_gold"]).all()  # gold's labels only


def test_length_bias_moves_the_longer_wins_rate_as_configured(env):
    base = longer_wins_fraction(make_pairs(env, 20_000, seed=0))
    assert abs(base - 0.5) < 0.02  # gold alone has no net length preference in this env
    for bias in (0.2, 0.5, 1.0):
        pairs = make_pairs(env, 20_000, seed=0, length_bias=bias)
        expected = bias + (1 - bias) * base
        assert abs(longer_wins_fraction(pairs) - expected) < 0.015, bias
    every = make_pairs(env, 2000, seed=0, length_bias=1.0)
    differ = every["chosen_eos"] != every["rejected_eos"]
    assert (every["chosen_eos"] > every["rejected_eos"])[differ].all()


def test_length_bias_only_relabels_the_same_pairs(env):
    """The paired control: same seed, same two completions per pair; only labels differ, and
    only towards the longer one; equal-length pairs keep gold's label."""
    gold = make_pairs(env, 3000, seed=1)
    biased = make_pairs(env, 3000, seed=1, length_bias=0.3)
    same = (biased["chosen"] == gold["chosen"]).all(1)
    swapped = (biased["chosen"] == gold["rejected"]).all(1) & (
        biased["rejected"] == gold["chosen"]
    ).all(1)
    assert (same | swapped).all()
    assert 0.05 < swapped.mean() < 0.3
    assert (biased["chosen_eos"] > biased["rejected_eos"])[swapped].all()
    equal_length = gold["chosen_eos"] == gold["rejected_eos"]
    assert not swapped[equal_length].any()


def test_length_bias_out_of_range_fails(env):
    with pytest.raises(ValueError, match="length_bias"):
        make_pairs(env, 10, seed=0, length_bias=1.5)


# ----- evaluation sets ---------------------------------------------------------------------------
def test_balanced_set_is_balanced_and_gold_labelled(env):
    sets = S.eval_sets(env, n_groups=64, group_size=8, shift=5, seed=0)
    p = sets.pairs
    assert len(p["chosen"]) > 200
    assert p["chosen_longer"].sum() * 2 == len(p["chosen_longer"])  # exactly half
    assert (sets.gold[p["chosen"]] > sets.gold[p["rejected"]]).all()
    assert (sets.group[p["chosen"]] == sets.group[p["rejected"]]).all()  # one prompt per pair
    longer = sets.length[p["chosen"]] > sets.length[p["rejected"]]
    np.testing.assert_array_equal(longer, p["chosen_longer"])
    # a reward that reads only length scores exactly 1/2 on it
    assert ((sets.length[p["chosen"]] > sets.length[p["rejected"]]).mean()) == 0.5


def test_shifted_copies_are_the_same_completions_longer(env):
    sets = S.eval_sets(env, n_groups=8, group_size=8, shift=5, seed=0)
    base_tokens, base_eos = sets.tokens[sets.shift_index], sets.eos[sets.shift_index]
    np.testing.assert_array_equal(sets.shift_eos, base_eos + 5)
    for row in range(len(base_eos)):  # everything before the base EOS is shared
        e = base_eos[row]
        np.testing.assert_array_equal(sets.shift_tokens[row, :e], base_tokens[row, :e])


# ----- statistics on constructions ---------------------------------------------------------------
def test_within_group_correlation_known_value():
    x = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0])
    y = np.array([1.0, 3.0, 2.0, -1.0, -2.0, -3.0, 10.0, 20.0, 30.0])
    group = np.repeat(np.arange(3), 3)
    # group 0: corr([1,2,3], [1,3,2]) = 0.5; group 1: -1; group 2: +1 (offsets and scale ignored)
    assert S.within_group_corr(x, y, group) == pytest.approx((0.5 - 1.0 + 1.0) / 3)
    const = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 3.0])  # a constant group is skipped
    assert S.within_group_corr(const, const * 2, np.repeat([0, 1], 3)) == pytest.approx(1.0)


def test_within_group_slope_ignores_group_offsets():
    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(50), 8)
    x = rng.integers(1, 20, len(group)).astype(float)
    y = 0.7 * x + 100 * rng.standard_normal(50)[group]  # large per-group offsets
    assert S.within_group_slope(y, x, group) == pytest.approx(0.7)


def test_probe_recovers_a_planted_linear_signal():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 16))
    w = rng.standard_normal(16)
    y = x @ w + 0.1 * rng.standard_normal(2000)
    assert S.ridge_r2(x[:1000], y[:1000], x[1000:], y[1000:], 1.0) > 0.99
    noise = rng.standard_normal(2000)
    assert abs(S.ridge_r2(x[:1000], noise[:1000], x[1000:], noise[1000:], 1.0)) < 0.03


def test_feature_direction_recovers_a_planted_direction():
    rng = np.random.default_rng(2)
    group = np.repeat(np.arange(100), 8)
    length = rng.integers(1, 21, len(group)).astype(float)
    content = rng.standard_normal(len(group))
    u, v = rng.standard_normal(12), rng.standard_normal(12)
    x = (
        np.outer(length, u)
        + np.outer(content, v)
        + 5 * rng.standard_normal((100, 12))[group]  # per-prompt offsets
        + 0.1 * rng.standard_normal((len(group), 12))
    )
    dirs = S.feature_directions(x, np.stack([length, content], 1), group)
    assert S.cosine(dirs[0], u) > 0.999
    assert S.cosine(dirs[1], v) > 0.99


def test_onset_interpolates_in_log_step():
    steps = [0, 1, 3, 7, 15]
    # half of the largest rise (2) is 1, crossed halfway between steps 3 and 7 in log(1 + step)
    assert S.onset_step(steps, [0.0, 0.0, 0.5, 1.5, 2.0]) == pytest.approx(np.sqrt(32) - 1)
    assert S.onset_step(steps, [0.0, 1.0, 2.0, 2.0, 2.0]) == pytest.approx(1.0)
    assert np.isnan(S.onset_step(steps, [0.0, -1.0, -2.0, -2.0, -2.0]))  # never rises


# ----- the model in the bridge -------------------------------------------------------------------
@pytest.fixture(scope="module")
def bridged(env):
    from alignlab.bridge import to_bridge

    cfg = RMConfig(d_vocab=ENV.d_vocab, n_ctx=ENV.n_ctx, d_model=16, n_layers=2, d_mlp=32)
    params = init_params(cfg, seed=4)
    gen = torch.Generator().manual_seed(0)
    for name, value in params.items():  # non-trivial LayerNorm and MLP biases
        if name.rsplit(".", 1)[1] in ("w", "b", "b_in", "b_out"):
            params[name] = value + 0.2 * torch.randn(value.shape, generator=gen)
    # float64: the bridge and the model compute differently, and the checks below compare them
    # far below fp32's resolution (both keep the weights' dtype)
    params = {name: value.double() for name, value in params.items()}
    sets = S.eval_sets(env, n_groups=16, group_size=8, shift=5, seed=0)
    return cfg, params, to_bridge(params, cfg), sets


# Rewards along two float64 paths: two layers of reductions up to d_mlp long.
F64 = {"n": 32, "depth": 8, "dtype": torch.float64}


def test_bridge_reward_at_eos_matches_the_model(bridged):
    cfg, params, bridge, sets = bridged
    ours = RewardModel(cfg, params)(torch.from_numpy(sets.tokens), torch.from_numpy(sets.eos))
    theirs = S.rewards_at_eos(bridge, sets.tokens, sets.eos)
    assert ours.dtype == torch.float64
    assert_close_fp(theirs, ours, **F64)


def test_patching_a_layer_with_itself_changes_nothing(bridged):
    cfg, params, bridge, sets = bridged
    hooks = list(S.layer_hooks(cfg.n_layers).values())
    reward, acts = S.run_at_eos(bridge, sets.tokens, sets.eos, hooks)
    for hook in hooks:
        same = S.patch_eos(bridge, sets.tokens, sets.eos, hook, acts[hook])
        assert_close_fp(same, reward, **F64, name=hook)
    # and patching in the longer copy's final residual gives the longer copy's reward
    base = sets.shift_index
    r_long, long_acts = S.run_at_eos(bridge, sets.shift_tokens, sets.shift_eos, hooks)
    last = hooks[-1]
    patched = S.patch_eos(bridge, sets.tokens[base], sets.eos[base], last, long_acts[last])
    assert_close_fp(patched, r_long, **F64)


def test_direct_attribution_sums_to_the_reward(bridged):
    cfg, params, bridge, sets = bridged
    comps = S.component_hooks(cfg.n_layers)
    reward, acts = S.run_at_eos(
        bridge, sets.tokens, sets.eos, [*comps.values(), "ln_final.hook_scale"]
    )
    h = S.head_direction(params, cfg.normalization)
    sigma = acts["ln_final.hook_scale"].reshape(-1)
    total = sum(acts[hook] @ h for hook in comps.values()) / sigma
    const = float(params["ln_final.b"].double() @ params["unembed.W_U"][:, 0].double())
    assert_close_fp(total + const, reward, **F64)


def test_checkpoint_measures_are_finite_and_complete(bridged):
    cfg, params, bridge, sets = bridged
    rows = S.checkpoint_measures(bridge, params, cfg, sets, ridge=1.0)
    names = {(r["measure"], r["component"]) for r in rows}
    assert ("head_align_length", "block1") in names and ("probe_gold", "embed") in names
    assert ("patch_frac", "block0") in names and ("patch_frac", "block1") not in names
    assert ("attr_length", "total") in names
    got = {(r["measure"], r["component"]): r["value"] for r in rows}
    parts = sum(v for (m, c), v in got.items() if m == "attr_length" and c != "total")
    assert parts == pytest.approx(got["attr_length", "total"])
    acc = got["acc_chosen_longer", ""], got["acc_chosen_shorter", ""]
    assert got["acc_balanced", ""] == pytest.approx(sum(acc) / 2)
    assert all(np.isfinite(r["value"]) for r in rows if r["measure"] != "patch_frac")


# ----- config ------------------------------------------------------------------------------------
def test_config_validates_and_bad_key_is_named(tmp_path):
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1]  # the experiment folder
    for scale in ("smoke", "laptop", "paper"):
        block = load_experiment(folder, scale)
        assert any(r.get("length_bias") == 0.0 for r in block["runs"])  # the control
    config = load_yaml(folder / "config.yaml")
    config["laptop"]["defaults"]["length_biass"] = 0.3
    with pytest.raises(ConfigError, match="length_biass"):
        validate(config, load_yaml(folder / "config.schema.yaml"))
