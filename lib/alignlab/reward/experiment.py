"""The reward experiment's plumbing: runs of the two sweeps, collection, cell summaries, markers,
numbers and the alpha / beta table. Science lives in env / model / train / bon.

A config block (experiments/reward/config.yaml) has `env`, `pool`, `defaults` (a run), `sweeps`
(`rm_size: {d_model: [...]}` at the defaults' data size, `data_size: {n_pairs: [...]}` at the
defaults' RM size; each sweep may name its own `seeds`), `seeds` (each sets the RM init seed
and the pairs' seed) and `oracle` (one run with proxy = gold). Runs shared by both sweeps (same
resolved config) are trained once. `ensemble` (Coste et al. 2023): for each of its `data_seeds`,
`members` RMs (init seeds) trained on the same pairs with the `run` overrides (e.g. 25% flipped
labels); their pool scores are combined by each rule of `alignlab.reward.bon.ENSEMBLE_RULES`
without retraining.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.provenance import config_hash
from alignlab.reward.bon import (
    ENSEMBLE_RULES,
    d_of_n,
    ensemble_curves,
    n_grid,
    standardize,
    summarize_cell,
)

SWEEPS = {"rm_size": "d_model", "data_size": "n_pairs"}


def run_id(run: dict) -> str:
    if run["oracle"]:
        return f"oracle-{config_hash(run)}"
    return f"dm{run['d_model']}-pairs{run['n_pairs']}-seed{run['seed']}-{config_hash(run)}"


def expand_runs(block: dict) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """({run_id: run}, {"sweep:value": [run_id per seed]}), plus "oracle:0" if asked for."""
    runs, cells = {}, {}
    for sweep, key in SWEEPS.items():
        spec = block["sweeps"].get(sweep, {})
        for value in spec.get(key, []):
            for seed in spec.get("seeds", block["seeds"]):
                run = {**block["defaults"], key: value, "seed": seed, "data_seed": seed}
                rid = run_id(run)
                runs[rid] = run
                cells.setdefault(cell_key(sweep, value), []).append(rid)
    if block.get("oracle", False):
        run = {
            **block["defaults"],
            "oracle": True,
            "seed": block["seeds"][0],
            "data_seed": block["seeds"][0],
        }
        runs[run_id(run)] = run
        cells[cell_key("oracle", 0)] = [run_id(run)]
    return runs, cells


def expand_ensemble(block: dict) -> tuple[dict[str, dict], dict[int, list[str]]]:
    """({run_id: member run}, {data_seed: [member run ids]}): one ensemble per data seed, whose
    members differ only in their init (and batch-order) seed, as in Coste et al. 2023."""
    spec = block.get("ensemble")
    runs, ensembles = {}, {}
    if not spec:
        return runs, ensembles
    for data_seed in spec["data_seeds"]:
        for seed in spec["members"]:
            run = {**block["defaults"], **spec["run"], "seed": seed, "data_seed": data_seed}
            rid = run_id(run)
            runs[rid] = run
            ensembles.setdefault(int(data_seed), []).append(rid)
    return runs, ensembles


def data_id(spec: dict) -> str:
    return config_hash(spec)


def collect(run_ids, runs, cells, bon_tables, log_tables, out_bon, out_logs, out_runs) -> None:
    """Concatenate per-run tables (never recompute); runs.parquet with sweep membership.

    cells may hold "ensemble:<data_seed>" keys (the members of one ensemble): their runs are
    marked `in_ensemble`; their bon rows are each member's own best-of-n curve."""
    pd.concat(
        [pd.read_parquet(p).assign(run_id=r) for r, p in zip(run_ids, bon_tables, strict=True)],
        ignore_index=True,
    ).to_parquet(out_bon, index=False)
    logs = pd.concat(
        [pd.read_parquet(p).assign(run_id=r) for r, p in zip(run_ids, log_tables, strict=True)],
        ignore_index=True,
    )
    logs.to_parquet(out_logs, index=False)
    n_params = logs[logs.measure == "n_params"].set_index("run_id")["value"]
    acc = logs[logs.measure == "eval_accuracy"].sort_values("step").groupby("run_id")["value"]
    acc = acc.last()  # held-out accuracy of the final checkpoint (TRL's strict >)
    member = {rid: set() for rid in run_ids}
    for key, rids in cells.items():
        sweep = key.split(":")[0]
        for rid in rids:
            member[rid].add(sweep)
    rows = []
    for rid in run_ids:
        flat = {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in runs[rid].items()}
        rows.append(
            {
                "run_id": rid,
                "role": "run",
                **flat,
                "n_params": int(n_params.get(rid, 0)),
                "heldout_accuracy": float(acc.get(rid, float("nan"))),
                "in_rm_sweep": "rm_size" in member[rid],
                "in_data_sweep": "data_size" in member[rid],
                "in_ensemble": "ensemble" in member[rid],
            }
        )
    for null in null_rows(runs, cells):
        rows.append(
            null | {"n_params": 0, "heldout_accuracy": float("nan"), "oracle": False}
            | dict.fromkeys(("in_rm_sweep", "in_data_sweep", "in_ensemble"), False)
        )  # fmt: skip
    pd.DataFrame(rows).to_parquet(out_runs, index=False)


NULL_ROLES = {"rm_size": "null_rm", "data_size": "null_data", "ensemble": "null_ensemble"}


def null_rows(runs: dict, cells: dict) -> list[dict]:
    """Rows of runs.parquet that are not trained runs but the same-size nulls of the markers: one
    per seed of each sweep (and per ensemble), role null_rm / null_data / null_ensemble. Their
    marker values (marker_values) compare two disjoint halves of the prompts of ONE cell under the
    same names as the real comparison, so the same rule can be applied where it must fail."""
    out = []
    for sweep, role in NULL_ROLES.items():
        keys = [k for k in cells if k.split(":")[0] == sweep]
        seeds = sorted({int(runs[r]["data_seed" if sweep == "ensemble" else "seed"])
                        for k in keys for r in cells[k]})  # fmt: skip
        out += [{"run_id": f"{role}-seed{s}", "role": role, "seed": s} for s in seeds]
    return out


def cell_key(sweep: str, value) -> str:
    return f"{sweep}:{value}"


def summarize(
    bon_path,
    runs_path,
    cells: dict,
    n_boot: int,
    boot_seed: int,
    z_threshold: float,
    out_fits,
    out_curves,
    out_markers,
    ensemble_fits=None,
    member_ids=(),
) -> None:
    """Per cell: mean curves, the gold peak and drop vs its SE over seeds, alpha / beta with
    bootstrap intervals (fits.parquet, curves.parquet); per-run marker values (markers.parquet),
    with the ensemble's (attached to its members) when ensemble_fits is given."""
    bon = pd.read_parquet(bon_path)
    runs = pd.read_parquet(runs_path).set_index("run_id")
    ns = np.sort(bon.n.unique())
    fits, curves, summaries = [], [], {}
    for key, rids in cells.items():
        sweep, value = key.split(":")
        per_seed = {}
        for rid in rids:
            table = bon[bon.run_id == rid]
            per_seed[int(runs.loc[rid, "seed"])] = {
                m: table[table.measure == m]
                .pivot(index="prompt", columns="n", values="value")
                .reindex(columns=ns)
                .to_numpy()
                for m in ("gold", "proxy")
            }
        s = summarize_cell(per_seed, ns, n_boot, boot_seed)
        summaries[key] = s
        n_params = int(runs.loc[rids[0], "n_params"])
        base = {
            "sweep": sweep,
            "value": int(value),
            "n_params": n_params,
            "d_model": int(runs.loc[rids[0], "d_model"]),
            "n_pairs": int(runs.loc[rids[0], "n_pairs"]),
            "heldout_accuracy": float(runs.loc[rids, "heldout_accuracy"].mean()),
        }
        scalars = {k: v for k, v in s.items() if np.ndim(v) == 0}
        fits.append(base | scalars | {"overoptimized": bool(s["cf_z"] >= z_threshold)})
        curves += curve_rows(base, s, ns)
        print(
            f"{sweep}={value} ({n_params} params): gold peak {s['peak_gold']:.2f} at n="
            f"{s['peak_n']} (d={s['peak_d']:.2f}; in-sample drop {s['drop']:.2f}); cross-fitted "
            f"gold at the chosen peak {s['cf_peak']:.2f}, drop {s['cf_drop']:.2f} +/- "
            f"{s['cf_se']:.2f} (bootstrap over prompts and seeds, z {s['cf_z']:.1f}); per seed "
            f"{np.round(s['cf_drop_seed'], 2).tolist()}; proxy rise after the peak "
            f"{s['proxy_rise_after_peak']:.2f}; alpha {s['alpha']:.2f} beta {s['beta']:.2f}"
        )
    fits = pd.DataFrame(fits)
    fits.to_parquet(out_fits, index=False)
    pd.DataFrame(curves).to_parquet(out_curves, index=False)
    values = marker_values(summaries, runs.reset_index(), cells)
    if ensemble_fits is not None and len(member_ids):
        null_ids = runs.index[runs.role == NULL_ROLES["ensemble"]].tolist()
        ens = ensemble_marker_values(
            pd.read_parquet(ensemble_fits), member_ids, null_ids, z_threshold
        )
        values = pd.concat([values, ens], ignore_index=True)
        oracle = summaries.get(cell_key("oracle", 0))
        if oracle is not None:  # the single-RM rule's null: gold itself, which cannot fall
            values = pd.concat(
                [values, _rows(cells[cell_key("oracle", 0)], "ens_cf_z_single", oracle["cf_z"])],
                ignore_index=True,
            )
    values.to_parquet(out_markers, index=False)


RULE_LABEL = {
    "single": "single member",
    "mean": "ensemble mean",
    "worst_case": "worst case (min)",
    "mean_minus_var": "mean - lambda var",
}


def ensemble(
    pool_path,
    score_paths,
    member_ids,
    ensembles: dict,
    spec: dict,
    analysis: dict,
    out_curves,
    out_fits,
) -> None:
    """Best-of-n gold and proxy for every ensemble rule, from the members' pool scores (no
    retraining). Each ensemble (one per data seed) is a replicate: curves.parquet has the mean
    over ensembles +/- SE, fits.parquet one row per rule (summarize_cell with the ensembles as
    seeds: peak, drop +/- SE, alpha / beta with a bootstrap over prompts and ensembles)."""
    from alignlab.reward.train import load_pool, load_scores  # torch: only where needed

    pool = load_pool(pool_path)
    gold = pool["gold"] - pool["gold"].mean()
    ns = n_grid(analysis["n_max"], analysis["per_octave"])
    scores = {r: load_scores(p) for r, p in zip(member_ids, score_paths, strict=True)}
    per_rule = {rule: {} for rule in ENSEMBLE_RULES}
    corr, gold_corr = [], []
    for data_seed, rids in sorted(ensembles.items()):
        members = np.stack([scores[r] for r in rids])
        out = ensemble_curves(members, gold, pool["prompt_id"], ns, spec["lambda"])
        for rule in ENSEMBLE_RULES:
            per_rule[rule][int(data_seed)] = out[rule]
        c = np.corrcoef(standardize(members))
        corr.append(c[np.triu_indices(len(rids), 1)].mean() if len(rids) > 1 else 1.0)
        gold_corr.append(np.mean([np.corrcoef(m, gold)[0, 1] for m in members]))
    fits, curves = [], []
    for rule in ENSEMBLE_RULES:
        s = summarize_cell(per_rule[rule], ns, analysis["n_boot"], analysis["boot_seed"])
        base = {"rule": rule, "label": RULE_LABEL[rule]}
        scalars = {k: v for k, v in s.items() if np.ndim(v) == 0}
        fits.append(
            base
            | scalars
            | {
                "n_members": len(spec["members"]),
                "n_ensembles": len(ensembles),
                "lambda": float(spec["lambda"]),
                "member_corr": float(np.mean(corr)),
                "member_gold_corr": float(np.mean(gold_corr)),
                "overoptimized": bool(s["cf_z"] >= analysis["z_threshold"]),
            }
        )
        curves += curve_rows(base, s, ns)
        print(
            f"{rule}: gold peak {s['peak_gold']:.2f} at n={s['peak_n']} (d={s['peak_d']:.2f}); "
            f"cross-fitted peak {s['cf_peak']:.2f}, drop {s['cf_drop']:.2f} +/- {s['cf_se']:.2f} "
            f"(z {s['cf_z']:.1f}); final gold {s['final_gold']:.2f}"
        )
    print(f"member-member correlation {np.mean(corr):.3f}; member-gold {np.mean(gold_corr):.3f}")
    pd.DataFrame(fits).to_parquet(out_fits, index=False)
    pd.DataFrame(curves).to_parquet(out_curves, index=False)


def ensemble_marker_values(
    fits: pd.DataFrame, member_ids, null_ids=(), z_threshold: float = 2.0
) -> pd.DataFrame:
    """Per-member values the ensemble markers read (cross-fitted drops): the single member's z,
    and the larger of the two conservative rules' drops as a fraction of the single member's.
    "Removing overoptimization" presupposes some: the fraction is NaN unless the single member
    overoptimizes (cf_z >= z_threshold). The null rows (`null_ids`) get the same fraction, under
    the same condition, between the single member on two disjoint halves of the prompts."""
    by = fits.set_index("rule")
    single = by.loc["single"]
    falls = bool(single.cf_z >= z_threshold)
    conservative = max(by.loc["worst_case", "cf_drop"], by.loc["mean_minus_var", "cf_drop"])
    values = {
        "ens_cf_z_single": single.cf_z,
        "ens_conservative_drop_frac": _frac(conservative, single.cf_drop) if falls else np.nan,
        **{f"ens_cf_drop_{rule}": by.loc[rule, "cf_drop"] for rule in ENSEMBLE_RULES},
        **{f"ens_cf_peak_{rule}": by.loc[rule, "cf_peak"] for rule in ENSEMBLE_RULES},
    }
    rows = [_rows(member_ids, name, v) for name, v in values.items()]
    null = _frac(single.half_a_cf_drop, single.half_b_cf_drop) if falls else np.nan
    rows.append(_rows(null_ids, "ens_conservative_drop_frac", null))
    return pd.concat(rows, ignore_index=True)


def _frac(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else float("nan")


def _rows(rids, name: str, value) -> pd.DataFrame:
    """Marker rows: one (run_id, marker, value) per run. `value` is a scalar (rids: run ids) or
    {seed: value} (rids: (run_id, seed) pairs; each run gets its seed's value)."""
    if isinstance(value, dict):
        return pd.DataFrame(
            [{"run_id": r, "marker": name, "value": float(value[s])} for r, s in rids],
            columns=["run_id", "marker", "value"],
        )
    return pd.DataFrame(
        [{"run_id": r, "marker": name, "value": float(value)} for r in rids],
        columns=["run_id", "marker", "value"],
    )


def curve_rows(base: dict, summary: dict, ns) -> list[dict]:
    """Tidy rows of one cell's mean best-of-n curves (one per n), each with the cell's `base`."""
    return [
        base
        | {
            "n": int(n),
            "d": float(summary["d"][j]),
            "gold": float(summary["gold_mean"][j]),
            "gold_se": float(summary["gold_se"][j]),
            "proxy": float(summary["proxy_mean"][j]),
        }
        for j, n in enumerate(ns)
    ]


def _per_seed(summary: dict, field: str) -> dict[int, float]:
    return {int(k): float(v) for k, v in zip(summary["seeds"], summary[field], strict=True)}


def _pooled_sd(*per_seed: dict) -> float:
    """Seed-to-seed SD of per-seed values, pooled over cells: sqrt(mean of their variances)."""
    return float(np.sqrt(np.mean([np.var(list(v.values()), ddof=1) for v in per_seed])))


def marker_values(summaries: dict, runs: pd.DataFrame, cells: dict) -> pd.DataFrame:
    """Per-run values the markers read (all cross-fitted, lib/alignlab/reward/bon.py: crossfit).

    For each sweep (tag rm / data), on every run of the sweep: the smallest cell's cross-fitted
    drop, its SE and z, its proxy rise after the peak; per seed (the run's seed), the smallest and
    largest cells' cross-fitted peak gold and relative drop, and the seed-to-seed SD of each
    (pooled over the two cells; the orderings' gap unit). On the sweep's null rows (role null_rm /
    null_data): the same names, but both "smallest" and "largest" are ONE cell on two disjoint
    halves of the prompts (the smallest cell for the drop, the largest for the peak gold). The
    oracle run carries the oracle cell's cross-fitted z under the falls' name (its null).
    """
    frames = []
    seed_of = runs.set_index("run_id")["seed"].astype(int)
    oracle = summaries.get(cell_key("oracle", 0))
    for sweep, tag in (("rm_size", "rm"), ("data_size", "data")):
        keys = sorted(
            (k for k in summaries if k.split(":")[0] == sweep), key=lambda k: int(k.split(":")[1])
        )
        if not keys:
            continue
        small, large = summaries[keys[0]], summaries[keys[-1]]
        rids = sorted({r for k in keys for r in cells[k]})
        pairs = [(r, int(seed_of[r])) for r in rids]
        nulls = runs[runs.role == NULL_ROLES[sweep]]
        null_pairs = list(zip(nulls.run_id, nulls.seed.astype(int), strict=True))

        def add(name, real, null=None, real_rids=rids, real_pairs=pairs, null_pairs=null_pairs):
            frames.append(_rows(real_pairs if isinstance(real, dict) else real_rids, name, real))
            if null is not None:
                frames.append(
                    _rows(
                        null_pairs if isinstance(null, dict) else [r for r, _ in null_pairs],
                        name,
                        null,
                    )
                )

        add(f"cf_drop_smallest_{tag}", small["cf_drop"])
        add(f"cf_se_smallest_{tag}", small["cf_se"])
        add(f"cf_drop_z_smallest_{tag}", small["cf_z"])
        if oracle is not None:
            frames.append(
                _rows(cells[cell_key("oracle", 0)], f"cf_drop_z_smallest_{tag}", oracle["cf_z"])
            )
        add(f"proxy_rise_smallest_{tag}", small["proxy_rise_after_peak"])
        add(f"max_cf_drop_z_{tag}", max(summaries[k]["cf_z"] for k in keys))
        for field, name in (("cf_peak_seed", "cf_peak"), ("cf_rel_drop_seed", "cf_rel_drop")):
            null_cell = small if field == "cf_rel_drop_seed" else large
            lo, hi = _per_seed(small, field), _per_seed(large, field)
            lo_null = _per_seed(null_cell, f"half_a_{field}")
            hi_null = _per_seed(null_cell, f"half_b_{field}")
            add(f"{name}_smallest_{tag}", lo, lo_null)
            add(f"{name}_largest_{tag}", hi, hi_null)
            add(f"{name}_seed_sd_{tag}", _pooled_sd(lo, hi), _pooled_sd(lo_null, hi_null))
    if oracle is not None:
        rids = cells[cell_key("oracle", 0)]
        frames.append(_rows(rids, "oracle_drop", oracle["drop"]))
        frames.append(_rows(rids, "oracle_cf_drop", oracle["cf_drop"]))
    if not frames:
        return pd.DataFrame(columns=["run_id", "marker", "value"])
    return pd.concat(frames, ignore_index=True)


# A cell's best-of-n summary that the paper quotes (lib/alignlab/reward/bon.py: summarize_cell).
DROP_FIELDS = (
    "peak_gold",
    "peak_d",
    "final_gold",
    "cf_peak",
    "cf_drop",
    "cf_se",
    "cf_z",
    "cf_rel_drop",
)


def numbers(
    fits_path,
    runs_path,
    block: dict,
    out_json,
    out_table,
    ensemble_fits=None,
    out_ensemble_table=None,
    pool_path=None,
) -> None:
    """numbers.json for the paper's macros (letters-only names), the alpha / beta table and
    (with ensemble_fits) the ensemble table; with pool_path, the share of base samples that use
    a star beyond its limit."""
    fits = pd.read_parquet(fits_path)
    runs = pd.read_parquet(runs_path)
    runs = runs[runs.role == "run"] if "role" in runs else runs
    env = block["env"]
    result = {
        "n_prompts": int(block["pool"]["n_prompts"]),
        "pool_size": int(block["pool"]["size"]),
        "n_max": int(block["analysis"]["n_max"]),
        "d_max": float(d_of_n(block["analysis"]["n_max"])),
        "n_seeds": len(block["seeds"]),
        "n_runs": len(runs),
        "default_n_pairs": int(block["defaults"]["n_pairs"]),
        "default_d_model": int(block["defaults"]["d_model"]),
        "repeat_penalty": float(env["repeat_penalty"]),
        "star_value": float(env["star_value"]),
        "star_limit": int(env["star_limit"]),
        "star_excess_cost": float(env["star_excess_cost"]),
        "pool_seed": int(block["pool"]["seed"]),
        "first_seed": int(min(block["seeds"])),
        "last_seed": int(max(block["seeds"])),
    }
    if pool_path is not None:
        from alignlab.reward.train import load_pool  # torch: only where needed

        pool = load_pool(pool_path)
        result["pool_excess_pct"] = float(100 * (pool["star_excess"] > 0).mean())
    for sweep, tag in (("rm_size", "rm"), ("data_size", "data")):
        part = fits[fits.sweep == sweep].sort_values("value")
        if part.empty:
            continue
        result[f"n_cells_{tag}"] = len(part)
        result[f"n_overoptimized_{tag}"] = int(part.overoptimized.sum())
        spec = block["sweeps"][sweep]
        result[f"n_seeds_{tag}"] = len(spec.get("seeds", block["seeds"]))
        most = part.sort_values("cf_z", kind="stable").iloc[-1]  # the strongest fall
        for label, row in (
            ("smallest", part.iloc[0]),
            ("largest", part.iloc[-1]),
            ("most", most),
        ):
            for field in ("value", "n_params", "heldout_accuracy", *DROP_FIELDS,
                          "proxy_rise_after_peak", "alpha", "beta"):  # fmt: skip
                result[f"{label}_{tag}_{field}"] = _num(row[field])
    oracle = fits[fits.sweep == "oracle"]
    if len(oracle):
        for field in ("peak_gold", "peak_d", "final_gold", "drop", "alpha", "beta"):
            result[f"oracle_{field}"] = _num(oracle.iloc[0][field])
    if ensemble_fits is not None:
        ens = pd.read_parquet(ensemble_fits).set_index("rule")
        spec = block["ensemble"]
        run = {**block["defaults"], **spec["run"]}
        result |= {
            "ens_n_members": len(spec["members"]),
            "ens_n_ensembles": len(spec["data_seeds"]),
            "ens_first_member": int(min(spec["members"])),
            "ens_last_member": int(max(spec["members"])),
            "ens_lambda": float(spec["lambda"]),
            "ens_d_model": int(run["d_model"]),
            "ens_n_pairs": int(run["n_pairs"]),
            "ens_flip_rate": float(run["flip_rate"]) if run["label"] == "flip" else 0.0,
            "ens_member_corr": float(ens.iloc[0].member_corr),
            "ens_member_gold_corr": float(ens.iloc[0].member_gold_corr),
        }
        names = {"single": "single", "mean": "mean", "worst_case": "worst", "mean_minus_var": "mlv"}
        for rule, name in names.items():
            for field in DROP_FIELDS:
                result[f"ens_{name}_{field}"] = _num(ens.loc[rule, field])
        if out_ensemble_table is not None:
            Path(out_ensemble_table).parent.mkdir(parents=True, exist_ok=True)
            Path(out_ensemble_table).write_text(ensemble_table(ens.reset_index()))
    Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    Path(out_table).parent.mkdir(parents=True, exist_ok=True)
    Path(out_table).write_text(fit_table(fits))


def _num(x):
    x = x.item() if hasattr(x, "item") else x
    return int(x) if isinstance(x, int | np.integer) else float(x)


def _f(x: float, fmt: str = ".2f") -> str:
    return format(x, fmt) if np.isfinite(x) else "--"


def fit_table(fits: pd.DataFrame) -> str:
    """LaTeX rows: sweep, size, params, pairs, accuracy, gold peak of the mean curve, the
    cross-fitted gold at the chosen peak, its drop to n_max +/- bootstrap SE, z, alpha, beta."""
    names = {"rm_size": "RM size", "data_size": "data size", "oracle": "oracle"}
    lines = [
        "% Generated by the reward_numbers rule; do not edit.",
        "\\begin{tabular}{llrrrrrrrll}",
        "\\toprule",
        "sweep & $d_{model}$ & params & pairs & acc. & peak gold & c.f. peak & c.f. drop $\\pm$ SE"
        " & $z$ & $\\alpha$ [95\\% CI] & $\\beta$ [95\\% CI] \\\\",
        "\\midrule",
    ]
    for _, r in fits.iterrows():
        lines.append(
            f"{names[r.sweep]} & {r.d_model if r.sweep != 'oracle' else '--'} & {r.n_params} & "
            f"{r.n_pairs if r.sweep != 'oracle' else '--'} & {_f(r.heldout_accuracy)} & "
            f"{r.peak_gold:.2f} & {r.cf_peak:.2f} & {r.cf_drop:.2f} $\\pm$ {_f(r.cf_se)} & "
            f"{_f(r.cf_z, '.1f')} & {r.alpha:.2f} [{r.alpha_lo:.2f}, {r.alpha_hi:.2f}] & "
            f"{r.beta:.3f} [{r.beta_lo:.3f}, {r.beta_hi:.3f}] \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def ensemble_table(fits: pd.DataFrame) -> str:
    """LaTeX rows per ensemble rule: gold peak of the mean curve (at d), final gold, the
    cross-fitted gold at the chosen peak and its drop +/- bootstrap SE (prompts and ensembles,
    the whole procedure resampled), z."""
    lines = [
        "% Generated by the reward_numbers rule; do not edit.",
        "\\begin{tabular}{lrrrrrr}",
        "\\toprule",
        "proxy & peak gold & at $d$ & gold at $d_{max}$ & c.f. peak & c.f. drop $\\pm$ SE & $z$"
        " \\\\",
        "\\midrule",
    ]
    for _, r in fits.iterrows():
        label = RULE_LABEL[r.rule].replace("lambda", "$\\lambda$")
        lines.append(
            f"{label} & {r.peak_gold:.2f} & {r.peak_d:.2f} & {r.final_gold:.2f} & "
            f"{r.cf_peak:.2f} & {r.cf_drop:.2f} $\\pm$ {_f(r.cf_se)} & {_f(r.cf_z, '.1f')} \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)
