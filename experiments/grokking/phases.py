"""Phase boundaries of a grokking run, detected from its progress measures, and phase markers.

Boundaries (documented rule, applied to every run alike; steps are checkpoint steps):
- circuit formation ends (cleanup starts) at the first step after the test-loss peak where the
  test loss is below chance, ln p: from there the generalizing circuit outweighs memorization on
  unseen pairs.
- memorization ends when the train loss has plateaued: the first step at which it is within a
  factor 10 of its lowest value before cleanup. (The test-loss peak is not used: at higher
  learning rates it is an early spike.)
- cleanup ends at the first step with test accuracy >= 99% once the test loss has fallen below
  1% of chance (0.01 ln p): by then weight decay has removed the memorized component.
A run that never gets there has no such boundary (NaN), and its later phases are absent.

Event times used by the markers: a loss "falls" at the first step at which it is below half of
chance (0.5 ln p); every loss starts near ln p at initialisation, so these times compare.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from alignlab.tables import series

PHASES = ("memorization", "circuit formation", "cleanup")


def _series(run: pd.DataFrame, measure: str, component: str = "") -> pd.Series:
    values = series(run, measure, component)
    if values.empty:
        raise KeyError(f"measure {measure!r} (component {component!r}) is not in the table")
    return values


def _first_step(mask: pd.Series, after: float = -math.inf) -> float:
    """First step (index) where mask holds, strictly after `after`; NaN if none (or after NaN)."""
    hits = mask[(mask.index > after) & mask]
    return float(hits.index[0]) if len(hits) else math.nan


def boundaries(run: pd.DataFrame, p: int) -> dict[str, float]:
    """The three boundary steps of one run (NaN where a phase never ends)."""
    test_loss, test_acc = _series(run, "test_loss"), _series(run, "test_acc")
    train_loss = _series(run, "train_loss")
    chance = math.log(p)
    circuit_end = _first_step(test_loss < chance, after=float(test_loss.idxmax()))
    before_cleanup = train_loss if math.isnan(circuit_end) else train_loss.loc[:circuit_end]
    mem_end = _first_step(before_cleanup <= 10 * before_cleanup.min())
    cleanup_end = _first_step((test_acc >= 0.99) & (test_loss < 0.01 * chance), after=circuit_end)
    return {"memorization_end": mem_end, "circuit_end": circuit_end, "cleanup_end": cleanup_end}


def fall_step(run: pd.DataFrame, measure: str, p: int, component: str = "") -> float:
    """First step at which the loss is below half of chance (0.5 ln p)."""
    return _first_step(_series(run, measure, component) < 0.5 * math.log(p))


def _mean_slope(series: pd.Series, start: float, end: float) -> float:
    """Mean d(series)/d(step) over [start, end]; NaN where the span is missing or empty."""
    if not (np.isfinite(start) and np.isfinite(end)) or end <= start:
        return math.nan
    return (series.asof(end) - series.asof(start)) / (end - start)


def excluded_rise_ratio(run: pd.DataFrame, b: dict[str, float]) -> float:
    """Excluded loss at the end of circuit formation over its value at the end of memorization."""
    if not (np.isfinite(b["memorization_end"]) and np.isfinite(b["circuit_end"])):
        return math.nan
    excluded = _series(run, "excluded_loss", "all")
    return excluded.asof(b["circuit_end"]) / excluded.asof(b["memorization_end"])


def norm_fall_ratio(run: pd.DataFrame, b: dict[str, float]) -> float:
    """How much faster the sum of squared weights falls in cleanup than in circuit formation:
    the ratio of the mean fall rates; 0 if it does not fall in cleanup, +inf if it falls only
    there; NaN where a phase is missing."""
    norm = _series(run, "sum_sq_weights")
    circuit_fall = -_mean_slope(norm, b["memorization_end"], b["circuit_end"])
    cleanup_fall = -_mean_slope(norm, b["circuit_end"], b["cleanup_end"])
    if not (np.isfinite(circuit_fall) and np.isfinite(cleanup_fall)):
        return math.nan
    if cleanup_fall <= 0:
        return 0.0
    return cleanup_fall / circuit_fall if circuit_fall > 0 else math.inf


def run_markers(run: pd.DataFrame, p: int) -> dict[str, float]:
    """Per-run values of the phase markers (event steps, ratios, final values)."""
    b = boundaries(run, p)
    norm = _series(run, "sum_sq_weights")
    final_step = float(norm.index.max())
    gini_start = b["memorization_end"]
    return {
        **b,
        "restricted_fall": fall_step(run, "restricted_loss", p),
        "test_fall": fall_step(run, "test_loss", p),
        "excluded_rise_ratio": excluded_rise_ratio(run, b),
        "norm_fall_ratio": norm_fall_ratio(run, b),
        "gini_W_E_rise": _series(run, "gini_W_E").asof(final_step)
        - _series(run, "gini_W_E").asof(gini_start),
        "gini_W_L_rise": _series(run, "gini_W_L").asof(final_step)
        - _series(run, "gini_W_L").asof(gini_start),
        "final_test_acc": _series(run, "test_acc").asof(final_step),
        "n_key_freqs": _series(run, "n_key_freqs").asof(final_step),
        "final_train_acc": _series(run, "train_acc").asof(final_step),
        # Orderings must lead by more than the resolution of the checkpoints they are read on.
        "eval_spacing": float(np.median(np.diff(norm.index.to_numpy(dtype=float))))
        if len(norm) > 1
        else math.nan,
    }


def phase_spans(b: dict[str, float], last_step: float) -> list[tuple[str, float, float]]:
    """(phase, start, end) for the phases a run reached, for shading figures."""
    edges = [0.0, b["memorization_end"], b["circuit_end"], b["cleanup_end"]]
    spans = []
    for name, start, end in zip(PHASES, edges[:-1], edges[1:], strict=True):
        if not np.isfinite(start) or start >= last_step:
            break
        spans.append((name, start, end if np.isfinite(end) else last_step))
    return spans


def _paired_run(meta: pd.DataFrame, run_id: str) -> str:
    """The run itself if it is canonical, else (a control) the same seed's canonical run (the
    first canonical run if that seed has none)."""
    if meta.loc[run_id, "role"] == "canonical":
        return run_id
    decayed = meta[meta.role == "canonical"]
    same_seed = decayed[decayed.seed == meta.loc[run_id, "seed"]]
    return str((same_seed if len(same_seed) else decayed).index[0])


def phase_table(measures_path, runs_path, phases_out, markers_out) -> None:
    """Write phase spans and per-run marker values as tidy tables."""
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    meta = runs.set_index("run_id")
    tables = dict(tuple(measures.groupby("run_id")))
    per_run = {rid: run_markers(run, int(meta.loc[rid, "p"])) for rid, run in tables.items()}
    span_rows, marker_rows = [], []
    for run_id, markers in per_run.items():
        # The null's values: this run's ratios over the epochs of the same seed's grokking run
        # phases (for a grokking run, its own), defined even where this run has no phases.
        paired = _paired_run(meta, run_id)
        b = {k: per_run[paired][k] for k in ("memorization_end", "circuit_end", "cleanup_end")}
        markers |= {
            "excluded_rise_ratio_paired": excluded_rise_ratio(tables[run_id], b),
            "norm_fall_ratio_paired": norm_fall_ratio(tables[run_id], b),
        }
        last = float(tables[run_id].step.max())
        for name, start, end in phase_spans(markers, last):
            span_rows.append({"run_id": run_id, "phase": name, "start": start, "end": end})
        marker_rows += [{"run_id": run_id, "marker": k, "value": v} for k, v in markers.items()]
    pd.DataFrame(span_rows, columns=["run_id", "phase", "start", "end"]).to_parquet(phases_out)
    pd.DataFrame(marker_rows).to_parquet(markers_out)
