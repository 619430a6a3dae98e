"""Per-cell summaries of the reward experiment: each sweep cell's and the oracle's best-of-n
curves over seeds, the cross-fitted fall test and the alpha / beta fit (`summarize`), and the
conservative ensembles' rules from the members' pool scores (`ensemble`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.reward.bon import (
    ENSEMBLE_RULES,
    ensemble_curves,
    n_grid,
    standardize,
    summarize_cell,
)
from experiments.reward.markers import _rows, ensemble_marker_values, marker_values
from experiments.reward.runs import NULL_ROLES, cell_key


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
        s = summarize_cell(_seed_curves(bon, runs, rids, ns), ns, n_boot, boot_seed)
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
        values = _with_ensemble_markers(
            values, summaries, runs, cells, ensemble_fits, member_ids, z_threshold
        )
    values.to_parquet(out_markers, index=False)


def _seed_curves(bon: pd.DataFrame, runs: pd.DataFrame, rids, ns) -> dict:
    """{seed: {"gold": [P, len(ns)], "proxy": [P, len(ns)]}}: one cell's runs' best-of-n curves
    per prompt, as summarize_cell takes them (runs: indexed by run_id)."""
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
    return per_seed


def _with_ensemble_markers(
    values, summaries, runs, cells, ensemble_fits, member_ids, z_threshold
) -> pd.DataFrame:
    """The sweeps' marker rows, then the ensemble's (on its members and its null runs), then the
    oracle's z as the single-RM rule's null."""
    null_ids = runs.index[runs.role == NULL_ROLES["ensemble"]].tolist()
    ens = ensemble_marker_values(pd.read_parquet(ensemble_fits), member_ids, null_ids, z_threshold)
    values = pd.concat([values, ens], ignore_index=True)
    oracle = summaries.get(cell_key("oracle", 0))
    if oracle is not None:  # the single-RM rule's null: gold itself, which cannot fall
        values = pd.concat(
            [values, _rows(cells[cell_key("oracle", 0)], "ens_cf_z_single", oracle["cf_z"])],
            ignore_index=True,
        )
    return values


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
    from experiments.reward.train import load_pool, load_scores  # torch: only where needed

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
