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


def _bootstrap_intervals(gold, d, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """2.5 and 97.5 percentiles of (alpha, beta, drop) over `n_boot` resamples of seeds and
    prompts of gold [S, P, N] (NaN when n_boot is 0)."""
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
    return lo, hi


def _half_nulls(gold, seed: int) -> dict:
    """half_a_* / half_b_*: the cross-fitted drop and per-seed values on each fixed half of the
    prompts of gold [S, P, N], without bootstrap."""
    n_seeds, n_prompts = gold.shape[:2]
    halves = {}
    for name, idx in zip("ab", prompt_halves(n_prompts, seed), strict=True):
        if len(idx) < 2:  # too few prompts to cross-fit within a half: the null is NaN
            nan = np.full(n_seeds, np.nan)
            h = {
                "cf_drop": np.nan,
                "cf_drop_seed": nan,
                "cf_peak_seed": nan,
                "cf_rel_drop_seed": nan,
            }
        else:
            h = crossfit_summary(gold[:, idx], 0, seed)
        halves |= {f"half_{name}_{k}": v for k, v in h.items() if k.endswith("_seed")}
        halves[f"half_{name}_cf_drop"] = h["cf_drop"]
    return halves


def summarize_cell(curves: dict[int, dict[str, np.ndarray]], ns, n_boot: int, seed: int) -> dict:
    """Overoptimization of one sweep cell from its seeds' per-prompt curves.

    curves: {seed: {"gold": [P, len(ns)], "proxy": [P, len(ns)]}}. Returns the mean curves, the
    gold peak (argmax of the seed-mean curve), the drop from the peak to the largest n with its
    standard error over seeds (per-seed drops at the common peak n), and alpha, beta, d* with
    bootstrap 95% intervals that resample prompts (the pool) and seeds.

    `drop` is measured at the argmax of the same noisy curve, so it is biased upwards (on a flat
    curve plus noise it is > 0); it is descriptive only. The evidence of a fall is the
    cross-fitted drop (`crossfit_summary`: peak chosen on other seeds and other prompts, bootstrap
    over the whole procedure): `cf_drop`, `cf_se`, `cf_z`, and per seed `cf_*_seed` (in the order
    of `seeds`). `half_a_*` / `half_b_*` are the same cross-fitted per-seed values on two fixed
    disjoint halves of the prompts (no bootstrap): the same-size nulls of the orderings.
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
    lo, hi = _bootstrap_intervals(gold, d, n_boot, seed)
    drop = float(gold_mean[peak] - gold_mean[-1])
    cf = crossfit_summary(gold, n_boot, seed)
    halves = _half_nulls(gold, seed)
    return (
        cf
        | halves
        | {
            "seeds": np.array(seeds),
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
            "rel_drop": drop / gold_mean[peak] if gold_mean[peak] > 0 else float("nan"),
            "drop_lo": float(lo[2]),
            "drop_hi": float(hi[2]),
            "proxy_rise_after_peak": float(proxy_mean[-1] - proxy_mean[peak]),
        }
        | _fit_fields(d, gold_mean, alpha, beta, lo, hi)
    )


def _fit_fields(d, gold_mean, alpha: float, beta: float, lo, hi) -> dict:
    """The alpha / beta fit of a cell's mean gold curve with its bootstrap intervals (lo, hi:
    percentiles of alpha, beta, drop), the implied optimal d* and the fit's R^2."""
    return {
        "alpha": alpha,
        "beta": beta,
        "alpha_lo": float(lo[0]),
        "alpha_hi": float(hi[0]),
        "beta_lo": float(lo[1]),
        "beta_hi": float(hi[1]),
        "d_star": alpha / (2 * beta) if beta > 0 else float("inf"),
        "r2": r_squared(d, gold_mean, alpha, beta),
    }


# ----- the cross-fitted drop from the peak ------------------------------------------------------
def _split_means(gold, in_a):
    """Per-seed prompt-mean curves of the two halves: ([S, N] on half a, [S, N] on the rest)."""
    return gold[:, in_a].mean(1), gold[:, ~in_a].mean(1)


def _choose(curves):
    """[S, N] per-seed curves -> the peak index chosen for each held-out seed: the argmax of the
    mean over the *other* seeds (leave one seed out), or of the seed's own curve if S == 1."""
    n_seeds = len(curves)
    if n_seeds == 1:
        return np.argmax(curves, axis=1)
    others = (curves.sum(0, keepdims=True) - curves) / (n_seeds - 1)
    return np.argmax(others, axis=1)


def crossfit(gold, n_splits: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Gold's drop from its peak, with the peak chosen on data the drop is not measured on.

    gold: [S, P, N] best-of-n gold per seed, prompt and n (n ascending, n_max last). For each of
    `n_splits` random halvings of the prompts and each held-out seed s: the peak n is the argmax of
    the mean curve of the *other* seeds on one half of the prompts (of seed s itself when there is
    one seed, as for the oracle, whose curve has no seed noise), and the drop is seed s's gold at
    that n minus its gold at n_max on the *other* half; both ways round, averaged. Selection and
    measurement share neither prompts nor seeds, so choosing the peak is not in the drop: on a
    curve that is flat or rising in expectation the cross-fitted drop is <= 0 in expectation,
    whereas the drop at the argmax of the same curve is > 0 on noise alone.

    Returns per-seed arrays [S]: `drop` (gold at the chosen n minus gold at n_max), `peak` (gold
    at the chosen n), `final` (gold at n_max); all averaged over splits and directions.
    """
    gold = np.asarray(gold, dtype=float)
    n_seeds, n_prompts, _ = gold.shape
    if n_prompts < 2:
        raise ValueError("cross-fitting needs at least 2 prompts")
    seeds = np.arange(n_seeds)
    peak = np.zeros(n_seeds)
    final = np.zeros(n_seeds)
    for _ in range(n_splits):
        in_a = np.zeros(n_prompts, dtype=bool)
        in_a[rng.permutation(n_prompts)[: n_prompts // 2]] = True
        a, b = _split_means(gold, in_a)
        peak += 0.5 * (b[seeds, _choose(a)] + a[seeds, _choose(b)])
        final += 0.5 * (a[:, -1] + b[:, -1])
    peak, final = peak / n_splits, final / n_splits
    return {"drop": peak - final, "peak": peak, "final": final}


def _z(value: float, se: float) -> float:
    """value / se; 0 when both are 0 (no drop, no noise), +-inf for a drop with no noise."""
    if not np.isfinite(value) or not np.isfinite(se):
        return float("nan")
    if se > 0:
        return value / se
    return 0.0 if value == 0 else math.copysign(math.inf, value)


def crossfit_summary(gold, n_boot: int, seed: int, n_splits: int = 8) -> dict:
    """The cross-fitted drop of one cell and its bootstrap SE over the whole procedure.

    Each bootstrap replicate resamples seeds (with replacement) and prompts (with replacement),
    then runs `crossfit` again, random halvings and leave-one-seed-out argmax included, so the SE
    contains the choice of the peak. Copies of one seed or prompt in a replicate count as distinct
    draws (the bootstrap world is the empirical distribution). Returns scalars `cf_drop` (mean
    over seeds), `cf_peak`, `cf_final`, `cf_rel_drop` (drop / peak gain, base = 0), `cf_se`,
    `cf_z` and per-seed arrays `cf_drop_seed`, `cf_peak_seed`, `cf_rel_drop_seed`.
    """
    gold = np.asarray(gold, dtype=float)
    rng = np.random.default_rng([seed, 5_150])
    point = crossfit(gold, n_splits, rng)
    n_seeds, n_prompts, _ = gold.shape
    boot = []
    for _ in range(n_boot):
        s_idx = rng.integers(0, n_seeds, n_seeds)
        p_idx = rng.integers(0, n_prompts, n_prompts)
        boot.append(crossfit(gold[s_idx][:, p_idx], n_splits, rng)["drop"].mean())
    se = float(np.std(boot, ddof=1)) if n_boot > 1 else float("nan")
    drop = float(point["drop"].mean())
    peak = float(point["peak"].mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_seed = np.where(point["peak"] > 0, point["drop"] / point["peak"], np.nan)
    return {
        "cf_drop": drop,
        "cf_peak": peak,
        "cf_final": float(point["final"].mean()),
        "cf_rel_drop": drop / peak if peak > 0 else float("nan"),
        "cf_se": se,
        "cf_z": _z(drop, se),
        "cf_drop_seed": point["drop"],
        "cf_peak_seed": point["peak"],
        "cf_rel_drop_seed": rel_seed,
    }


def prompt_halves(n_prompts: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the prompts (a fixed random split), for the same-size nulls."""
    order = np.random.default_rng([seed, 6_007]).permutation(n_prompts)
    return np.sort(order[: n_prompts // 2]), np.sort(order[n_prompts // 2 :])


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
