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
                **flat,
                "n_params": int(n_params.get(rid, 0)),
                "heldout_accuracy": float(acc.get(rid, float("nan"))),
                "in_rm_sweep": "rm_size" in member[rid],
                "in_data_sweep": "data_size" in member[rid],
                "in_ensemble": "ensemble" in member[rid],
            }
        )
    pd.DataFrame(rows).to_parquet(out_runs, index=False)


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
    fits, curves = [], []
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
        fits.append(base | scalars | {"overoptimized": bool(s["drop_z_min"] >= z_threshold)})
        curves += curve_rows(base, s, ns)
        print(
            f"{sweep}={value} ({n_params} params): gold peak {s['peak_gold']:.2f} at n="
            f"{s['peak_n']} (d={s['peak_d']:.2f}), drop {s['drop']:.2f} +/- {s['drop_se']:.2f} "
            f"over seeds (z {s['drop_z']:.1f}), +/- {s['drop_boot_se']:.2f} bootstrap over "
            f"prompts and seeds (z {s['drop_z_boot']:.1f}); proxy rise after the peak "
            f"{s['proxy_rise_after_peak']:.2f}; alpha {s['alpha']:.2f} beta {s['beta']:.2f} "
            f"R2 {s['r2']:.3f}"
        )
    fits = pd.DataFrame(fits)
    fits.to_parquet(out_fits, index=False)
    pd.DataFrame(curves).to_parquet(out_curves, index=False)
    values = marker_values(fits, runs.reset_index(), cells)
    if ensemble_fits is not None and len(member_ids):
        ens = ensemble_marker_values(pd.read_parquet(ensemble_fits), member_ids)
        values = pd.concat([values, ens], ignore_index=True)
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
                "overoptimized": bool(s["drop_z_min"] >= analysis["z_threshold"]),
            }
        )
        curves += curve_rows(base, s, ns)
        print(
            f"{rule}: gold peak {s['peak_gold']:.2f} at n={s['peak_n']} (d={s['peak_d']:.2f}), "
            f"drop {s['drop']:.2f} +/- {s['drop_se']:.2f} (z {s['drop_z']:.1f}; bootstrap SE "
            f"{s['drop_boot_se']:.2f}, z {s['drop_z_boot']:.1f}), final gold {s['final_gold']:.2f}"
        )
    print(f"member-member correlation {np.mean(corr):.3f}; member-gold {np.mean(gold_corr):.3f}")
    pd.DataFrame(fits).to_parquet(out_fits, index=False)
    pd.DataFrame(curves).to_parquet(out_curves, index=False)


def ensemble_marker_values(fits: pd.DataFrame, member_ids) -> pd.DataFrame:
    """Per-member values the ensemble markers read: the single member's drop in SEs, and the
    larger of the two conservative rules' drops as a fraction of the single member's."""
    by = fits.set_index("rule")
    single = by.loc["single"]
    conservative = max(by.loc["worst_case", "drop"], by.loc["mean_minus_var", "drop"])
    values = {
        "ens_drop_z_single": single.drop_z_min,
        "ens_conservative_drop_frac": conservative / single["drop"]
        if single["drop"] > 0
        else float("nan"),
        **{f"ens_drop_{rule}": by.loc[rule, "drop"] for rule in ENSEMBLE_RULES},
        **{f"ens_peak_gold_{rule}": by.loc[rule, "peak_gold"] for rule in ENSEMBLE_RULES},
    }
    rows = [
        {"run_id": r, "marker": name, "value": float(v)}
        for name, v in values.items()
        for r in member_ids
    ]
    return pd.DataFrame(rows, columns=["run_id", "marker", "value"])


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


def marker_values(fits: pd.DataFrame, runs: pd.DataFrame, cells: dict) -> pd.DataFrame:
    """Per-run values the markers read: each sweep's smallest / largest cell, the oracle."""
    rows = []

    def add(rids, name, value):
        rows.extend({"run_id": r, "marker": name, "value": float(value)} for r in rids)

    for sweep, tag in (("rm_size", "rm"), ("data_size", "data")):
        part = fits[fits.sweep == sweep].sort_values("value")
        if part.empty:
            continue
        rids = sorted({r for key, rs in cells.items() if key.startswith(sweep) for r in rs})
        small, large = part.iloc[0], part.iloc[-1]
        add(rids, f"drop_z_smallest_{tag}", small.drop_z)
        add(rids, f"drop_z_min_smallest_{tag}", small.drop_z_min)
        add(rids, f"rel_drop_smallest_{tag}", max(0.0, small.rel_drop))
        add(rids, f"rel_drop_largest_{tag}", max(0.0, large.rel_drop))
        add(rids, f"proxy_rise_smallest_{tag}", small.proxy_rise_after_peak)
        add(rids, f"peak_gold_smallest_{tag}", small.peak_gold)
        add(rids, f"peak_gold_largest_{tag}", large.peak_gold)
        add(rids, f"n_overoptimized_{tag}", part.overoptimized.sum())
        add(rids, f"max_drop_z_{tag}", part.drop_z.max())
        add(rids, f"max_drop_z_min_{tag}", part.drop_z_min.max())
    oracle = fits[fits.sweep == "oracle"]
    if len(oracle):
        rids = cells[cell_key("oracle", 0)]
        add(rids, "oracle_rel_drop", oracle.iloc[0].rel_drop)
        add(rids, "oracle_drop", oracle.iloc[0]["drop"])
    return pd.DataFrame(rows, columns=["run_id", "marker", "value"])


# A cell's best-of-n summary that the paper quotes (lib/alignlab/reward/bon.py: summarize_cell).
DROP_FIELDS = ("peak_gold", "peak_d", "final_gold", "drop", "drop_se", "drop_boot_se", "drop_z_min")


def numbers(
    fits_path,
    runs_path,
    block: dict,
    out_json,
    out_table,
    ensemble_fits=None,
    out_ensemble_table=None,
) -> None:
    """numbers.json for the paper's macros (letters-only names), the alpha / beta table and
    (with ensemble_fits) the ensemble table."""
    fits = pd.read_parquet(fits_path)
    runs = pd.read_parquet(runs_path)
    result = {
        "n_prompts": int(block["pool"]["n_prompts"]),
        "pool_size": int(block["pool"]["size"]),
        "n_max": int(block["analysis"]["n_max"]),
        "d_max": float(d_of_n(block["analysis"]["n_max"])),
        "n_seeds": len(block["seeds"]),
        "n_runs": len(runs),
        "default_n_pairs": int(block["defaults"]["n_pairs"]),
        "default_d_model": int(block["defaults"]["d_model"]),
        "repeat_penalty": float(block["env"]["repeat_penalty"]),
    }
    for sweep, tag in (("rm_size", "rm"), ("data_size", "data")):
        part = fits[fits.sweep == sweep].sort_values("value")
        if part.empty:
            continue
        result[f"n_cells_{tag}"] = len(part)
        result[f"n_overoptimized_{tag}"] = int(part.overoptimized.sum())
        spec = block["sweeps"][sweep]
        result[f"n_seeds_{tag}"] = len(spec.get("seeds", block["seeds"]))
        most = part.sort_values("drop_z_min", kind="stable").iloc[-1]  # the strongest fall
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


def fit_table(fits: pd.DataFrame) -> str:
    """LaTeX rows: sweep, size, params, pairs, gold peak, drop +/- SE over seeds, its bootstrap
    SE (prompts and seeds), alpha, beta (95% CI)."""
    names = {"rm_size": "RM size", "data_size": "data size", "oracle": "oracle"}
    lines = [
        "% Generated by the reward_numbers rule; do not edit.",
        "\\begin{tabular}{llrrrrrrll}",
        "\\toprule",
        "sweep & $d_{model}$ & params & pairs & acc. & peak gold & drop $\\pm$ SE & boot. SE & "
        "$\\alpha$ [95\\% CI] & $\\beta$ [95\\% CI] \\\\",
        "\\midrule",
    ]
    for _, r in fits.iterrows():
        se = "--" if not np.isfinite(r.drop_se) else f"{r.drop_se:.2f}"
        acc = "--" if not np.isfinite(r.heldout_accuracy) else f"{r.heldout_accuracy:.2f}"
        boot = "--" if not np.isfinite(r.drop_boot_se) else f"{r.drop_boot_se:.2f}"
        lines.append(
            f"{names[r.sweep]} & {r.d_model if r.sweep != 'oracle' else '--'} & {r.n_params} & "
            f"{r.n_pairs if r.sweep != 'oracle' else '--'} & {acc} & {r.peak_gold:.2f} & "
            f"{r['drop']:.2f} $\\pm$ {se} & {boot} & "
            f"{r.alpha:.2f} [{r.alpha_lo:.2f}, {r.alpha_hi:.2f}] & "
            f"{r.beta:.3f} [{r.beta_lo:.3f}, {r.beta_hi:.3f}] \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def ensemble_table(fits: pd.DataFrame) -> str:
    """LaTeX rows per ensemble rule: gold peak (at d), final gold, drop +/- SE over ensembles,
    its bootstrap SE (prompts and ensembles) and z = drop over the larger SE."""
    lines = [
        "% Generated by the reward_numbers rule; do not edit.",
        "\\begin{tabular}{lrrrrrr}",
        "\\toprule",
        "proxy & peak gold & at $d$ & gold at $d_{max}$ & drop $\\pm$ SE & boot. SE & $z$ \\\\",
        "\\midrule",
    ]
    for _, r in fits.iterrows():
        se = "--" if not np.isfinite(r.drop_se) else f"{r.drop_se:.2f}"
        boot = "--" if not np.isfinite(r.drop_boot_se) else f"{r.drop_boot_se:.2f}"
        z = f"{r.drop_z_min:.1f}" if np.isfinite(r.drop_z_min) else "--"
        label = RULE_LABEL[r.rule].replace("lambda", "$\\lambda$")
        lines.append(
            f"{label} & {r.peak_gold:.2f} & {r.peak_d:.2f} & {r.final_gold:.2f} & "
            f"{r['drop']:.2f} $\\pm$ {se} & {boot} & {z} \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)
