"""The LLC experiment's tables: collect per-run tables, per-run marker values, the numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from alignlab import results
from alignlab.results import write_numbers
from alignlab.tables import series
from experiments.llc.estimate import PHASE_BOUNDARIES


def collect(
    run_ids: list[str],
    runs: dict[str, dict],
    roles: dict[str, str],
    tables: list[Path],
    traces: list[Path],
    out_measures: Path,
    out_runs: Path,
    out_traces: Path,
) -> None:
    """Stack the per-run tables and traces (never recompute); the runs table with roles.

    `runs[run_id]` holds `model` (mlp | transformer) and the run's config values.
    """
    results.collect(run_ids, runs, roles, tables, out_measures, out_runs)
    results.stack_runs(run_ids, traces).to_parquet(out_traces, index=False)


def _series(run: pd.DataFrame, measure: str) -> pd.Series:
    return series(run, measure)


def _spearman(x: pd.Series, y: pd.Series) -> float:
    joined = pd.concat([x, y], axis=1, join="inner").dropna()
    if len(joined) < 3:
        return math.nan
    return float(joined.rank().corr().iloc[0, 1])


MARKER_NAMES = (
    "llc_initial",
    "llc_peak",
    "llc_max",
    "llc_final",
    "llc_rise_ratio",
    "llc_fall_ratio",
    "test_fall",
    "chains_agree_frac",
    "spearman_log_train_loss",
    "spearman_log_test_loss",
    "final_test_acc",
)


def run_markers(run: pd.DataFrame, p: int) -> dict[str, float]:
    """Per-run LLC markers: where it peaks, how much it rises to the peak and falls after, and
    how it tracks the losses; `test_fall` is the first step with test loss below 0.5 ln p."""
    llc = _series(run, "llc")
    test_loss, train_loss = _series(run, "test_loss"), _series(run, "train_loss")
    peak = float(llc.idxmax())
    falls = test_loss[(test_loss < 0.5 * math.log(p)) & (test_loss.index > 0)]
    return {
        "llc_initial": float(llc.iloc[0]),
        "llc_peak": peak,
        "llc_max": float(llc.max()),
        "llc_final": float(llc.iloc[-1]),
        "llc_rise_ratio": float(llc.max() / llc.iloc[0]) if llc.iloc[0] > 0 else math.inf,
        "llc_fall_ratio": float(llc.max() / llc.iloc[-1]) if llc.iloc[-1] > 0 else math.inf,
        "test_fall": float(falls.index[0]) if len(falls) else math.nan,
        "chains_agree_frac": float(_series(run, "chains_agree").mean()),
        "spearman_log_train_loss": _spearman(llc, np.log(train_loss)),
        "spearman_log_test_loss": _spearman(llc, np.log(test_loss)),
        "final_test_acc": float(_series(run, "test_acc").iloc[-1]),
    }


def markers(measures_path, runs_path, grokking_markers_path, out: Path) -> None:
    """markers.parquet (run_id, marker, value); transformer runs also get the LLC at the
    grokking experiment's phase boundaries (its markers.parquet, same run_id)."""
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    grok = pd.read_parquet(grokking_markers_path)
    rows = []
    for run_id, run in measures.groupby("run_id"):
        meta = runs.set_index("run_id").loc[run_id]
        values = run_markers(run, int(meta.p))
        if meta.model == "transformer":
            bounds = grok[grok.run_id == run_id].set_index("marker")["value"]
            llc = _series(run, "llc")
            for name in PHASE_BOUNDARIES:
                step = float(bounds.get(name, math.nan))
                values[name] = step
                # measured there (llc_transformer_run); interpolated only if it was not
                at = np.interp(step, llc.index, llc.values) if math.isfinite(step) else math.nan
                values[f"llc_at_{name}"] = float(at)
        rows += [{"run_id": run_id, "marker": k, "value": v} for k, v in values.items()]
    pd.DataFrame(rows, columns=["run_id", "marker", "value"]).to_parquet(out, index=False)


def numbers(markers_path, runs_path, out: Path) -> None:
    """{name: value} for the paper, from the first trained MLP run and the first transformer run,
    and how many MLP seeds generalized (the frozen control, lr 0, is not a seed)."""
    runs = pd.read_parquet(runs_path).sort_values("run_id")
    values = pd.read_parquet(markers_path).pivot_table(
        index="run_id", columns="marker", values="value", dropna=False
    )
    result: dict[str, float | int | str] = {}
    for model, prefix in (("mlp", "mlp"), ("transformer", "tf")):
        chosen = runs[(runs.model == model) & (runs.role == "canonical")]
        if chosen.empty:
            continue
        first = chosen.iloc[0]
        v = values.loc[first.run_id].reindex(
            [*MARKER_NAMES, *PHASE_BOUNDARIES, *(f"llc_at_{b}" for b in PHASE_BOUNDARIES)]
        )
        result |= {
            f"{prefix}_p": int(first.p),
            f"{prefix}_steps": int(first.steps),
            f"{prefix}_seed": int(first.seed),
            f"{prefix}_llc_initial": float(v.llc_initial),
            f"{prefix}_llc_peak_step": float(v.llc_peak),
            f"{prefix}_llc_max": float(v.llc_max),
            f"{prefix}_llc_final": float(v.llc_final),
            f"{prefix}_test_fall": float(v.test_fall),
            f"{prefix}_chains_agree_frac": float(v.chains_agree_frac),
            f"{prefix}_spearman_train": float(v.spearman_log_train_loss),
            f"{prefix}_spearman_test": float(v.spearman_log_test_loss),
        }
        for key in ("sgld_lr", "sgld_localization", "sgld_n_beta", "sgld_num_draws"):
            if key in first and pd.notna(first[key]):
                result[f"{prefix}_{key}"] = float(first[key])
        if model == "transformer":
            for name in PHASE_BOUNDARIES:
                result[f"tf_{name}"] = float(v[name])
                result[f"tf_llc_at_{name}"] = float(v[f"llc_at_{name}"])
    mlp = runs[(runs.model == "mlp") & (runs.role == "canonical")].run_id
    result["mlp_n_seeds"] = len(mlp)
    result["mlp_n_generalized"] = int(values.reindex(mlp)["test_fall"].notna().sum())
    clean = {
        k: (None if isinstance(x, float) and not math.isfinite(x) else x) for k, x in result.items()
    }
    write_numbers(clean, out)
