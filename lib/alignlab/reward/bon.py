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

    Every seed is scored on the same pool, so the SE over seeds misses the pool's own noise (which
    prompts happen to be exploitable). `drop_boot_se` is the bootstrap SE of the drop at the same
    peak n with prompts and seeds resampled; `drop_z_min` = min(drop / SE over seeds, drop /
    bootstrap SE) is the conservative evidence of a fall.
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
        boot.append((a, b, g[pk] - g[-1], g[peak] - g[-1]))
    boot = np.array(boot) if boot else np.full((1, 4), np.nan)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    boot_se = float(boot[:, 3].std(ddof=1)) if len(boot) > 1 else float("nan")
    drop = float(gold_mean[peak] - gold_mean[-1])
    drop_z = drop / se if se and se > 0 else (0.0 if drop == 0 else float("inf"))
    drop_z_boot = (
        drop / boot_se if boot_se and boot_se > 0 else (0.0 if drop == 0 else float("inf"))
    )
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
        "drop_z": drop_z,
        "drop_boot_se": boot_se,
        "drop_z_boot": drop_z_boot,
        "drop_z_min": float(np.nanmin([drop_z, drop_z_boot])),
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


# ----- conservative ensembles (Coste et al. 2023) -----------------------------------------------
ENSEMBLE_RULES = ("single", "mean", "worst_case", "mean_minus_var")


def standardize(scores) -> np.ndarray:
    """[K, M] member scores on the pool -> each member with mean 0 and sd 1 over the pool (base
    samples), so that members are on one scale before they are combined and lambda is in units of
    a member's sd squared. Best-of-n under one member is unchanged (a monotone map)."""
    scores = np.asarray(scores, dtype=float)
    sd = scores.std(1, keepdims=True)
    return (scores - scores.mean(1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def aggregate(scores, rule: str, lam: float) -> np.ndarray:
    """One proxy from K members' standardized scores [K, M]: the ensemble `mean`, the
    `worst_case` (min over members), or `mean_minus_var` = mean - lam * variance over members
    (population variance, ddof 0). `single` is no aggregate (see ensemble_curves)."""
    scores = np.asarray(scores, dtype=float)
    if rule == "mean":
        return scores.mean(0)
    if rule == "worst_case":
        return scores.min(0)
    if rule == "mean_minus_var":
        return scores.mean(0) - lam * scores.var(0)
    raise ValueError(f"ensemble rule {rule!r} is not one of {ENSEMBLE_RULES[1:]}")


def ensemble_curves(scores, gold, prompt_id, ns, lam: float) -> dict[str, dict[str, np.ndarray]]:
    """Best-of-n per prompt for each ensemble rule: {rule: {"gold": [P, N], "proxy": [P, N]}}.

    scores: [K, M] raw member scores on the pool (standardized here). `single` is the mean over
    members of each member's own best-of-n curve (the expected curve of one RM); the other rules
    select with the combined proxy, recentred so the base sampler (the pool) scores 0 as every
    proxy is. Proxy values are in standardized member units.
    """
    z = standardize(scores)
    singles = [bon_curves(member, gold, prompt_id, ns) for member in z]
    out = {"single": {m: np.mean([c[m] for c in singles], axis=0) for m in ("gold", "proxy")}}
    for rule in ENSEMBLE_RULES[1:]:
        proxy = aggregate(z, rule, lam)
        out[rule] = bon_curves(proxy - proxy.mean(), gold, prompt_id, ns)
    return out
