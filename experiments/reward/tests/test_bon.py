"""Best-of-n, KL_bon and the d(alpha - beta d) fit against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.reward import bon


def test_unbiased_estimator_equals_enumeration():
    rng = np.random.default_rng(0)
    proxy, gold = rng.random(9), rng.standard_normal(9)
    ns = [1, 2, 3, 5, 8, 9]
    curves = bon.bon_curves(proxy, gold, np.zeros(9, int), ns)
    expected = [bon.brute_force_bon(proxy, gold, n) for n in ns]
    np.testing.assert_allclose(curves["gold"][0], expected, rtol=1e-10)
    np.testing.assert_allclose(
        curves["proxy"][0], [bon.brute_force_bon(proxy, proxy, n) for n in ns], rtol=1e-10
    )


def test_bon_endpoints_and_weights():
    rng = np.random.default_rng(1)
    proxy = rng.random(50)
    curves = bon.bon_curves(proxy, proxy, np.zeros(50, int), [1, 50])
    assert curves["gold"][0, 0] == pytest.approx(proxy.mean())  # n = 1: the base mean
    assert curves["gold"][0, 1] == pytest.approx(proxy.max())  # n = N: the pool's best
    w = bon.bon_weights(1000, [1, 7, 1000])
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert (w >= 0).all()


def test_ties_are_broken_at_random():
    """A constant proxy selects nothing: best-of-n gold is the pool mean for every n."""
    gold = np.arange(200.0)
    curves = bon.bon_curves(np.zeros(200), gold, np.zeros(200, int), [1, 10, 100])
    np.testing.assert_allclose(curves["gold"][0], gold.mean(), rtol=1e-12)
    # two tied groups: the best of all 4 comes from the top group, whose members are equally likely
    curves = bon.bon_curves(np.array([0, 0, 1, 1.0]), np.array([1, 2, 3, 5.0]), np.zeros(4), [4])
    assert curves["gold"][0, 0] == pytest.approx(4.0)


def test_kl_bon():
    assert bon.kl_bon(1) == 0.0
    assert bon.kl_bon(2) == pytest.approx(math.log(2) - 0.5)
    assert bon.d_of_n(1000) == pytest.approx(math.sqrt(math.log(1000) - 999 / 1000))
    grid = bon.n_grid(1000)
    assert grid[0] == 1 and grid[-1] == 1000 and grid == sorted(set(grid))


def test_fit_recovers_alpha_beta():
    d = bon.d_of_n(bon.n_grid(1024))
    gold = d * (1.3 - 0.4 * d)
    alpha, beta = bon.fit_alpha_beta(d, gold)
    assert alpha == pytest.approx(1.3, abs=1e-8)
    assert beta == pytest.approx(0.4, abs=1e-8)
    assert bon.r_squared(d, gold, alpha, beta) == pytest.approx(1.0)


def test_summarize_cell_drop_and_se():
    """Three seeds of a curve that rises then falls: known peak, drop and SE."""
    ns = bon.n_grid(64)
    d = bon.d_of_n(ns)
    base = d * (2.0 - 1.0 * d)  # peaks at d = 1
    offsets = [-0.1, 0.0, 0.1]  # per-seed drops differ by these
    curves = {
        s: {
            "gold": np.stack([base + off * (d >= d.max())] * 4),
            "proxy": np.stack([d] * 4),
        }
        for s, off in enumerate(offsets)
    }
    out = bon.summarize_cell(curves, ns, n_boot=20, seed=0)
    peak = int(np.argmax(base))
    assert out["peak_n"] == ns[peak]
    drops = np.array([base[peak] - base[-1] - off for off in offsets])
    assert out["drop"] == pytest.approx(drops.mean())
    assert out["drop_se"] == pytest.approx(drops.std(ddof=1) / math.sqrt(3))
    assert out["proxy_rise_after_peak"] > 0
    assert out["beta"] > 0


def _noise(rng, shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def test_crossfit_on_a_clear_rise_and_fall():
    """Three seeds x 64 prompts of d (2 - d) (peak 1 at d = 1, value 2.71 (2 - 2.71) = -1.93 at
    n = 4096) plus noise: the cross-fitted drop is close to the true 2.93 with a large z."""
    ns = bon.n_grid(4096)
    d = bon.d_of_n(ns)
    true = d * (2.0 - d)
    rng = np.random.default_rng(0)
    gold = true + _noise(rng, (3, 64, len(ns)), 0.5)
    out = bon.crossfit_summary(gold, n_boot=100, seed=0)
    truth = true.max() - true[-1]
    assert out["cf_drop"] == pytest.approx(truth, abs=5 * out["cf_se"])
    assert out["cf_z"] > 10
    assert out["cf_drop_seed"].shape == (3,) and (out["cf_drop_seed"] > 0).all()
    assert out["cf_rel_drop"] == pytest.approx(out["cf_drop"] / out["cf_peak"])


def test_crossfit_on_noise_is_unbiased_and_the_in_sample_drop_is_not():
    """A flat curve plus noise, 300 draws: the drop at the argmax of the same curve is biased
    upwards (its mean is many SEs above 0); the cross-fitted drop's mean is within 3 SEs of 0."""
    ns = bon.n_grid(4096)
    rng = np.random.default_rng(1)
    in_sample, crossfitted = [], []
    for _ in range(300):
        gold = _noise(rng, (3, 16, len(ns)))
        mean = gold.mean((0, 1))
        in_sample.append(mean.max() - mean[-1])
        crossfitted.append(bon.crossfit(gold, 4, rng)["drop"].mean())
    for values, biased in ((in_sample, True), (crossfitted, False)):
        mean, se = np.mean(values), np.std(values, ddof=1) / np.sqrt(len(values))
        assert (mean > 10 * se) if biased else (abs(mean) < 3 * se)


def test_crossfit_z_is_near_zero_on_a_rising_curve_and_on_noise():
    """No fall (rising, or flat plus noise): z stays well below the 2 SEs a fall needs."""
    ns = bon.n_grid(1024)
    d = bon.d_of_n(ns)
    rng = np.random.default_rng(2)
    rising = d + _noise(rng, (3, 32, len(ns)), 0.3)
    assert bon.crossfit_summary(rising, n_boot=50, seed=0)["cf_z"] < 0
    flat = _noise(rng, (3, 32, len(ns)), 0.3)
    assert abs(bon.crossfit_summary(flat, n_boot=50, seed=0)["cf_z"]) < 2


def test_crossfit_chooses_on_other_seeds_and_other_prompts():
    """Seed 0 alone has a spike of 5 at n index 3 on every prompt; all seeds have 1 at index 1.
    Held-out seed 0 is measured at the peak seeds 1-2 choose (index 1: drop 1), never at its own
    spike (which would give 5); seeds 1 and 2 are measured where the others' mean, pulled by seed
    0's spike, peaks (index 3), where they are 0 (drop 0). One seed (the oracle) chooses on the
    other half of its own prompts."""
    n_n = 6
    gold = np.zeros((3, 8, n_n))
    gold[:, :, 1] = 1.0
    gold[0, :, 3] = 5.0
    out = bon.crossfit(gold, 4, np.random.default_rng(0))
    assert out["drop"].tolist() == [1.0, 0.0, 0.0]
    rising = np.tile(np.arange(n_n, dtype=float), (1, 8, 1))
    one = bon.crossfit(rising, 4, np.random.default_rng(0))
    assert one["drop"].tolist() == [0.0] and one["peak"].tolist() == [n_n - 1.0]


def test_crossfit_bootstrap_includes_the_choice_of_the_peak():
    """Two equally high peaks, one per half of the prompts' noise: the chosen n changes from
    replicate to replicate, so the bootstrap SE is positive even though each seed agrees."""
    ns = bon.n_grid(64)
    rng = np.random.default_rng(3)
    gold = np.zeros((3, 20, len(ns)))
    gold[:, :, 2] = 1.0 + _noise(rng, (1, 20), 0.5)
    gold[:, :, 4] = 1.0 + _noise(rng, (1, 20), 0.5)
    out = bon.crossfit_summary(gold, n_boot=100, seed=0)
    assert out["cf_se"] > 0 and np.isfinite(out["cf_z"])


def test_summarize_cell_reports_the_halves_for_the_same_size_null():
    ns = bon.n_grid(64)
    d = bon.d_of_n(ns)
    rng = np.random.default_rng(4)
    proxy = np.stack([d] * 10)
    curves = {s: {"gold": d * (2 - d) + _noise(rng, (10, len(ns)), 0.1), "proxy": proxy}
              for s in (7, 3, 5)}  # fmt: skip
    out = bon.summarize_cell(curves, ns, n_boot=20, seed=0)
    assert out["seeds"].tolist() == [3, 5, 7]
    for half in ("a", "b"):
        assert out[f"half_{half}_cf_peak_seed"].shape == (3,)
    a, b = bon.prompt_halves(10, 0)
    assert sorted([*a, *b]) == list(range(10)) and len(a) == len(b) == 5
