"""Best-of-n, KL_bon and the d(alpha - beta d) fit against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alignlab.reward import bon


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


@pytest.mark.filterwarnings("ignore::scipy.optimize.OptimizeWarning")  # exact fits: no covariance
def test_pool_noise_is_in_the_bootstrap_se_not_the_seed_se():
    """Seeds that agree exactly (SE over seeds 0) on a pool where only some prompts fall: the
    bootstrap over prompts sees that the fall rests on a few prompts, and drop_z_min uses it."""
    ns = bon.n_grid(64)
    d = bon.d_of_n(ns)
    rise = d * 2.0
    fall = d * (2.0 - 3.0 * d)
    prompts = np.stack([fall, fall, rise, rise, rise, rise])  # 2 of 6 fall; mean d (2 - d)
    curves = {s: {"gold": prompts.copy(), "proxy": np.stack([d] * 6)} for s in range(3)}
    out = bon.summarize_cell(curves, ns, n_boot=200, seed=0)
    assert out["drop"] > 0 and out["drop_se"] == 0.0
    assert out["drop_z"] == float("inf")
    peak = int(np.argmax(prompts.mean(0)))
    per_prompt = prompts[:, peak] - prompts[:, -1]
    expected = per_prompt.std() / np.sqrt(len(per_prompt))  # bootstrap SE of a mean of 6
    assert out["drop_boot_se"] == pytest.approx(expected, rel=0.25)
    assert out["drop_z_min"] == pytest.approx(out["drop"] / out["drop_boot_se"])
    assert out["drop_z_min"] < 4  # far from the seed-only verdict
