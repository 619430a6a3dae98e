"""The reward experiment's plumbing: runs of the two sweeps, collection, cell summaries, markers,
numbers and the alpha / beta table. Science lives in env / model / train / bon.

A config block (experiments/reward/config.yaml) has `env`, `pool`, `defaults` (a run), `sweeps`
(`rm_size: {d_model: [...]}` at the defaults' data size, `data_size: {n_pairs: [...]}` at the
defaults' RM size), `seeds` (each sets the RM init seed and the pairs' seed) and `oracle` (one
run with proxy = gold). Runs shared by both sweeps (same resolved config) are trained once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.provenance import config_hash
from alignlab.reward.bon import d_of_n, summarize_cell

SWEEPS = {"rm_size": "d_model", "data_size": "n_pairs"}


def run_id(run: dict) -> str:
    if run["oracle"]:
        return f"oracle-{config_hash(run)}"
    return f"dm{run['d_model']}-pairs{run['n_pairs']}-seed{run['seed']}-{config_hash(run)}"


def expand_runs(block: dict) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """({run_id: run}, {"sweep:value": [run_id per seed]}), plus "oracle:0" if asked for."""
    runs, cells = {}, {}
    for sweep, key in SWEEPS.items():
        for value in block["sweeps"].get(sweep, {}).get(key, []):
            for seed in block["seeds"]:
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


def data_id(spec: dict) -> str:
    return config_hash(spec)


def collect(run_ids, runs, cells, bon_tables, log_tables, out_bon, out_logs, out_runs) -> None:
    """Concatenate per-run tables (never recompute); runs.parquet with sweep membership."""
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
) -> None:
    """Per cell: mean curves, the gold peak and drop vs its SE over seeds, alpha / beta with
    bootstrap intervals (fits.parquet, curves.parquet); per-run marker values (markers.parquet)."""
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
        fits.append(base | scalars | {"overoptimized": bool(s["drop_z"] >= z_threshold)})
        for j, n in enumerate(ns):
            curves.append(
                base
                | {
                    "n": int(n),
                    "d": float(s["d"][j]),
                    "gold": float(s["gold_mean"][j]),
                    "gold_se": float(s["gold_se"][j]),
                    "proxy": float(s["proxy_mean"][j]),
                }
            )
        print(
            f"{sweep}={value} ({n_params} params): gold peak {s['peak_gold']:.2f} at n="
            f"{s['peak_n']} (d={s['peak_d']:.2f}), drop {s['drop']:.2f} +/- {s['drop_se']:.2f} "
            f"(z {s['drop_z']:.1f}); alpha {s['alpha']:.2f} beta {s['beta']:.2f} "
            f"R2 {s['r2']:.3f}"
        )
    fits = pd.DataFrame(fits)
    fits.to_parquet(out_fits, index=False)
    pd.DataFrame(curves).to_parquet(out_curves, index=False)
    marker_values(fits, runs.reset_index(), cells).to_parquet(out_markers, index=False)


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
        add(rids, f"rel_drop_smallest_{tag}", max(0.0, small.rel_drop))
        add(rids, f"rel_drop_largest_{tag}", max(0.0, large.rel_drop))
        add(rids, f"proxy_rise_smallest_{tag}", small.proxy_rise_after_peak)
        add(rids, f"peak_gold_smallest_{tag}", small.peak_gold)
        add(rids, f"peak_gold_largest_{tag}", large.peak_gold)
        add(rids, f"n_overoptimized_{tag}", part.overoptimized.sum())
        add(rids, f"max_drop_z_{tag}", part.drop_z.max())
    oracle = fits[fits.sweep == "oracle"]
    if len(oracle):
        rids = cells[cell_key("oracle", 0)]
        add(rids, "oracle_rel_drop", oracle.iloc[0].rel_drop)
        add(rids, "oracle_drop", oracle.iloc[0]["drop"])
    return pd.DataFrame(rows, columns=["run_id", "marker", "value"])


def numbers(fits_path, runs_path, block: dict, out_json, out_table) -> None:
    """numbers.json for the paper's macros (letters-only names) and the alpha / beta table."""
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
        for label, row in (("smallest", part.iloc[0]), ("largest", part.iloc[-1])):
            for field in (
                "value",
                "n_params",
                "peak_gold",
                "peak_d",
                "final_gold",
                "drop",
                "drop_se",
                "alpha",
                "beta",
            ):
                result[f"{label}_{tag}_{field}"] = _num(row[field])
    oracle = fits[fits.sweep == "oracle"]
    if len(oracle):
        for field in ("peak_gold", "final_gold", "drop", "alpha", "beta"):
            result[f"oracle_{field}"] = _num(oracle.iloc[0][field])
    Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    Path(out_table).parent.mkdir(parents=True, exist_ok=True)
    Path(out_table).write_text(fit_table(fits))


def _num(x):
    x = x.item() if hasattr(x, "item") else x
    return int(x) if isinstance(x, int | np.integer) else float(x)


def fit_table(fits: pd.DataFrame) -> str:
    """LaTeX rows: sweep, size, params, pairs, gold peak, drop +/- SE, alpha, beta (95% CI)."""
    names = {"rm_size": "RM size", "data_size": "data size", "oracle": "oracle"}
    lines = [
        "% Generated by the reward_numbers rule; do not edit.",
        "\\begin{tabular}{llrrrrrll}",
        "\\toprule",
        "sweep & $d_{model}$ & params & pairs & acc. & peak gold & drop $\\pm$ SE & "
        "$\\alpha$ [95\\% CI] & $\\beta$ [95\\% CI] \\\\",
        "\\midrule",
    ]
    for _, r in fits.iterrows():
        se = "--" if not np.isfinite(r.drop_se) else f"{r.drop_se:.2f}"
        acc = "--" if not np.isfinite(r.heldout_accuracy) else f"{r.heldout_accuracy:.2f}"
        lines.append(
            f"{names[r.sweep]} & {r.d_model if r.sweep != 'oracle' else '--'} & {r.n_params} & "
            f"{r.n_pairs if r.sweep != 'oracle' else '--'} & {acc} & {r.peak_gold:.2f} & "
            f"{r['drop']:.2f} $\\pm$ {se} & {r.alpha:.2f} [{r.alpha_lo:.2f}, {r.alpha_hi:.2f}] & "
            f"{r.beta:.3f} [{r.beta_lo:.3f}, {r.beta_hi:.3f}] \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)
