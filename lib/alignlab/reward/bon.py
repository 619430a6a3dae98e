"""Best-of-n over a pool, KL_bon, the d(alpha - beta d) fit, and the overoptimization summary.

Best-of-n with the unbiased estimator (Gao et al. 2022, appendix; Nakano et al. 2021): for a pool
of N samples of one prompt sorted by proxy reward (ties broken at random), the best of n samples
drawn without replacement is the sample of rank i (0-based, ascending) with probability
C(i, n-1) / C(N, n). The expected gold (or proxy) reward of best-of-n is that weighted sum, exact
for the pool and far less noisy than drawing subsets. KL(best-of-n || base) = log n - (n-1)/n,
d = sqrt(KL).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import curve_fit
from scipy.special import gammaln


def kl_bon(n) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    return np.log(n) - (n - 1) / n


def d_of_n(n) -> np.ndarray:
    return np.sqrt(kl_bon(n))


def n_grid(n_max: int, per_octave: int = 2) -> list[int]:
    """1 .. n_max, log-spaced (`per_octave` points per doubling), distinct integers, n_max last."""
    k = int(math.ceil(math.log2(n_max) * per_octave))
    grid = sorted({int(round(2 ** (i / per_octave))) for i in range(k + 1)} | {n_max})
    return [n for n in grid if n <= n_max]


def bon_weights(pool_size: int, ns) -> np.ndarray:
    """[len(ns), pool_size]: P(best of n is the sample of ascending rank i), rows sum to 1."""
    i = np.arange(pool_size, dtype=float)
    rows = []
    for n in ns:
        if not 1 <= n <= pool_size:
            raise ValueError(f"n={n} must be in [1, pool size {pool_size}]")
        logw = np.full(pool_size, -np.inf)
        ok = i >= n - 1
        logc = gammaln(i[ok] + 1) - gammaln(n) - gammaln(i[ok] - n + 2)
        log_total = gammaln(pool_size + 1) - gammaln(n + 1) - gammaln(pool_size - n + 1)
        logw[ok] = logc - log_total
        w = np.exp(logw)
        rows.append(w / w.sum())  # exact up to rounding; renormalised against its drift
    return np.array(rows)


def bon_curves(proxy, gold, prompt_id, ns) -> dict[str, np.ndarray]:
    """Expected proxy and gold of best-of-n per prompt: {"proxy": [P, len(ns)], "gold": ...}.

    Every prompt's pool must have the same size. Ties in the proxy are broken at random, in
    expectation and exactly: within a group of tied proxy values every member is equally likely to
    be chosen, so the group's gold is replaced by its mean. A constant proxy gives best-of-n =
    the pool mean for every n.
    """
    proxy, gold, prompt_id = map(np.asarray, (proxy, gold, prompt_id))
    prompts = np.unique(prompt_id)
    sizes = {int((prompt_id == p).sum()) for p in prompts}
    if len(sizes) != 1:
        raise ValueError(f"pools of different sizes per prompt: {sorted(sizes)}")
    (size,) = sizes
    weights = bon_weights(size, ns)
    out = {"proxy": np.empty((len(prompts), len(ns))), "gold": np.empty((len(prompts), len(ns)))}
    for j, p in enumerate(prompts):
        sel = np.flatnonzero(prompt_id == p)
        order = np.argsort(proxy[sel], kind="stable")
        px, gd = proxy[sel][order], gold[sel][order]
        _, group, counts = np.unique(px, return_inverse=True, return_counts=True)
        if len(counts) < len(px):  # ties: each member of a group gets the group's mean gold
            gd = (np.bincount(group, weights=gd) / counts)[group]
        out["proxy"][j] = weights @ px
        out["gold"][j] = weights @ gd
    return out


def brute_force_bon(values_proxy, values_gold, n: int) -> float:
    """Mean gold of the proxy-argmax over every n-subset (for tests; tiny pools, no ties)."""
    import itertools

    vals = [
        values_gold[max(sub, key=lambda k: values_proxy[k])]
        for sub in itertools.combinations(range(len(values_proxy)), n)
    ]
    return float(np.mean(vals))


# ----- the fit gold = d (alpha - beta d) ------------------------------------------------------
def _model(d, alpha, beta):
    return d * (alpha - beta * d)


def fit_alpha_beta(d, gold) -> tuple[float, float]:
    """Least-squares alpha, beta of gold = d (alpha - beta d) (linear in both, solved exactly)."""
    d, gold = np.asarray(d, float), np.asarray(gold, float)
    design = np.stack([d, -(d**2)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, gold, rcond=None)
    # the same through scipy, as the paper's fits are usually done; identical for a linear model
    popt, _ = curve_fit(_model, d, gold, p0=[alpha, beta])
    return float(popt[0]), float(popt[1])


def r_squared(d, gold, alpha, beta) -> float:
    gold = np.asarray(gold, float)
    resid = gold - _model(np.asarray(d, float), alpha, beta)
    total = ((gold - gold.mean()) ** 2).sum()
    return float(1 - (resid**2).sum() / total) if total > 0 else float("nan")


def summarize_cell(curves: dict[int, dict[str, np.ndarray]], ns, n_boot: int, seed: int) -> dict:
    """Overoptimization of one sweep cell from its seeds' per-prompt curves.

    curves: {seed: {"gold": [P, len(ns)], "proxy": [P, len(ns)]}}. Returns the mean curves, the
    gold peak (argmax of the seed-mean curve), the drop from the peak to the largest n with its
    standard error over seeds (per-seed drops at the common peak n), and alpha, beta, d* with
    bootstrap 95% intervals that resample prompts (the pool) and seeds.
    """
    ns = np.asarray(ns)
    d = d_of_n(ns)
    seeds = sorted(curves)
    gold = np.stack([curves[s]["gold"] for s in seeds])  # [S, P, N]
    proxy = np.stack([curves[s]["proxy"] for s in seeds])
    gold_seed = gold.mean(1)  # [S, N] prompt-mean per seed
    proxy_seed = proxy.mean(1)
    gold_mean = gold_seed.mean(0)
    proxy_mean = proxy_seed.mean(0)
    peak = int(np.argmax(gold_mean))
    drops = gold_seed[:, peak] - gold_seed[:, -1]
    se = float(drops.std(ddof=1) / math.sqrt(len(seeds))) if len(seeds) > 1 else float("nan")
    alpha, beta = fit_alpha_beta(d, gold_mean)
    rng = np.random.default_rng(seed)
    boot = []
    n_seeds, n_prompts = gold.shape[:2]
    for _ in range(n_boot):
        s_idx = rng.integers(0, n_seeds, n_seeds)
        p_idx = rng.integers(0, n_prompts, n_prompts)
        g = gold[s_idx][:, p_idx].mean((0, 1))
        a, b = fit_alpha_beta(d, g)
        pk = int(np.argmax(g))
        boot.append((a, b, g[pk] - g[-1]))
    boot = np.array(boot) if boot else np.full((1, 3), np.nan)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    drop = float(gold_mean[peak] - gold_mean[-1])
    return {
        "d": d,
        "gold_mean": gold_mean,
        "proxy_mean": proxy_mean,
        "gold_se": gold_seed.std(0, ddof=1) / math.sqrt(len(seeds))
        if len(seeds) > 1
        else np.full(len(ns), np.nan),
        "n_seeds": len(seeds),
        "peak_n": int(ns[peak]),
        "peak_d": float(d[peak]),
        "peak_gold": float(gold_mean[peak]),
        "final_gold": float(gold_mean[-1]),
        "drop": drop,
        "drop_se": se,
        "drop_z": drop / se if se and se > 0 else (0.0 if drop == 0 else float("inf")),
        "rel_drop": drop / gold_mean[peak] if gold_mean[peak] > 0 else float("nan"),
        "drop_lo": float(lo[2]),
        "drop_hi": float(hi[2]),
        "proxy_rise_after_peak": float(proxy_mean[-1] - proxy_mean[peak]),
        "alpha": alpha,
        "beta": beta,
        "alpha_lo": float(lo[0]),
        "alpha_hi": float(hi[0]),
        "beta_lo": float(lo[1]),
        "beta_hi": float(hi[1]),
        "d_star": alpha / (2 * beta) if beta > 0 else float("inf"),
        "r2": r_squared(d, gold_mean, alpha, beta),
    }
