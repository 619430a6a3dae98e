"""What the reward section of the paper quotes: numbers.json (the macros), the alpha / beta
table and the ensemble table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.results import write_numbers
from experiments.reward.bon import d_of_n
from experiments.reward.summary import RULE_LABEL

# A cell's best-of-n summary that the paper quotes (experiments/reward/bon.py: summarize_cell).
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


def _setup_numbers(block: dict, runs: pd.DataFrame) -> dict:
    """The setup the text states: pool, seeds, defaults and the environment's reward terms."""
    env = block["env"]
    return {
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


def _sweep_numbers(fits: pd.DataFrame, block: dict) -> dict:
    """Per sweep (rm_size, data_size): cell counts and the smallest, largest and most
    overoptimized (highest cross-fitted z) cell's fields; then the oracle cell's fit."""
    result = {}
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
    return result


def _ensemble_numbers(ens: pd.DataFrame, block: dict) -> dict:
    """The ensemble's setup, its members' correlations and each aggregation rule's drop fields
    (ens: the ensemble fits indexed by rule)."""
    spec = block["ensemble"]
    run = {**block["defaults"], **spec["run"]}
    result = {
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
    return result


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
    result = _setup_numbers(block, runs)
    if pool_path is not None:
        from experiments.reward.train import load_pool  # torch: only where needed

        pool = load_pool(pool_path)
        result["pool_excess_pct"] = float(100 * (pool["star_excess"] > 0).mean())
    result |= _sweep_numbers(fits, block)
    if ensemble_fits is not None:
        ens = pd.read_parquet(ensemble_fits).set_index("rule")
        result |= _ensemble_numbers(ens, block)
        if out_ensemble_table is not None:
            Path(out_ensemble_table).parent.mkdir(parents=True, exist_ok=True)
            Path(out_ensemble_table).write_text(ensemble_table(ens.reset_index()))
    write_numbers(result, out_json)
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
