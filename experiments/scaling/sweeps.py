"""Scaling and phase diagrams: the scaling experiment's steps, one function per Snakemake rule.

Four sweeps share one config (experiments/scaling/config.yaml), each a grid over the scale's
`defaults` (a flat run config as in the grokking experiment):
- fraction (Power et al. 2022): steps to 99% test accuracy vs training fraction, per operation;
- phase (Liu et al. 2022): decoder lr x decoder weight decay, W_E at lr 1e-3, wd 0
  (embed_lr / embed_weight_decay), each run classified into one of four phases;
- width: d_model / d_mlp; grokking step and the number of key frequencies vs size;
- weight_decay: including wd = 0, the control that does not grok.

Every run trains with `alignlab.modular.train_run` (CPU: one 1-thread job per run, early stop on)
or, on a GPU, together with the runs of its shape in one vectorized model
(`alignlab.vectorized_train.train_group`). Training lives in those modules, not here, so that
editing this module's analysis never invalidates a training job (each rule hashes the code it
runs).
`summarize_run` turns a run's train_log and final checkpoint into one row of milestones;
`collect` concatenates the rows (one row per run, config values as columns).

Definitions
- milestone(col, threshold): the first evaluated step with col >= threshold; NaN if never reached
  within the budget (runs that never generalize stay in the tables, with NaN and a flag).
- steps_to_target: milestone(test_acc, analysis.target_acc) (Power: 0.99); generalized: it is
  finite.
- Liu's phases from train/test milestones at analysis.phase_acc (0.9): comprehension if both are
  reached and test - train <= analysis.phase_gap; grokking if both, gap larger; memorization if
  only train; confusion if neither. A run that reaches the test milestone but not the train one
  (not seen in practice) counts as comprehension. Liu et al. use gap 1e3 steps of a 1e5 budget;
  the config scales the gap with the budget (see its comment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.checkpoints import load_weights, run_checkpoints
from alignlab.config import expand_runs, load_experiment
from alignlab.measures import final_key_frequencies
from alignlab.modular import MODEL_KEYS, dataset_id, model_config
from alignlab.provenance import config_hash
from alignlab.results import write_numbers
from alignlab.tables import flat_config

SWEEPS = ("fraction", "phase", "width", "weight_decay")
PHASES = ("comprehension", "grokking", "memorization", "confusion")
# Columns of the per-run summary, after the run's config values.
SUMMARY_COLUMNS = (
    "steps_to_target",
    "generalized",
    "train_milestone",
    "test_milestone",
    "phase",
    "final_step",
    "final_train_acc",
    "final_test_acc",
    "n_key_freqs",
    "key_freqs",
)


# ---------------------------------------------------------------- config -> runs


def load_config(experiment_dir: Path, scale: str) -> dict:
    """The chosen scale's block, validated (with every other scale) against the schema."""
    return load_experiment(experiment_dir, scale)


def expand_sweeps(block: dict) -> dict[str, dict]:
    """{run_id: flat run config} over every sweep of a scale block.

    A sweep's `defaults` override the scale's; its `grid` and `runs` expand as in
    `alignlab.config.expand_runs`. Run ids start with the sweep name; each run records its sweep
    under the key `sweep` (not part of the hash, which covers the resolved config).
    """
    runs = {}
    for sweep in SWEEPS:
        spec = block.get("sweeps", {}).get(sweep)
        if spec is None:
            continue
        sub = {
            "defaults": {**block["defaults"], **spec.get("defaults", {})},
            "grid": spec.get("grid", {}),
            "runs": spec.get("runs", []),
        }
        for run_id, run in expand_runs(sub).items():
            if run_id.startswith("base-") and spec.get("runs") and not spec.get("grid"):
                continue  # a sweep given only as a list of runs has no base run
            runs[f"{sweep}-{run_id}"] = {**run, "sweep": sweep}
    return runs


def group_id(run: dict) -> str:
    """Runs with the same group id can train together as one vectorized model: same shape,
    dataset, budget and evaluation schedule (seeds, lr and weight decay may differ)."""
    keys = ("d_model", "n_heads", "d_head", "d_mlp", "act_fn", "attn_rate", "n_layers",
            "normalization", "batch_size", "steps", "betas", "warmup_steps", "checkpoint_spacing",
            "checkpoint_every", "checkpoint_count", "early_stop_patience", "early_stop_acc",
            "device")  # fmt: skip
    shape = config_hash({key: run.get(key) for key in keys})
    return f"{run['sweep']}-{dataset_id(run)}-{shape}"


def vectorizable(run: dict) -> bool:
    """The vectorized model is the fast one-layer model at full batch; others train alone."""
    return model_config(run).is_one_layer and run.get("batch_size") is None


def vectorized_groups(runs: dict[str, dict]) -> dict[str, list[str]]:
    """{group id: sorted run ids} for groups of two or more runs (the ones worth stacking)."""
    groups: dict[str, list[str]] = {}
    for run_id, run in sorted(runs.items()):
        if vectorizable(run):
            groups.setdefault(group_id(run), []).append(run_id)
    return {gid: ids for gid, ids in groups.items() if len(ids) > 1}


# ---------------------------------------------------------------- milestones and phases


def milestone(log: pd.DataFrame, column: str, threshold: float) -> float:
    """First evaluated step with log[column] >= threshold; NaN if never reached."""
    hit = log.loc[log[column] >= threshold, "step"]
    return float(hit.min()) if len(hit) else math.nan


def classify_phase(train_milestone: float, test_milestone: float, gap: float) -> str:
    """Liu et al.'s phase from the steps at which train and test accuracy first reach 0.9."""
    train_ok, test_ok = math.isfinite(train_milestone), math.isfinite(test_milestone)
    if train_ok and test_ok:
        return "comprehension" if test_milestone - train_milestone <= gap else "grokking"
    if train_ok:
        return "memorization"
    if test_ok:
        return "comprehension"
    return "confusion"


def summarize_log(log: pd.DataFrame, analysis: dict) -> dict:
    """Milestones and the phase of one run's train_log."""
    to_target = milestone(log, "test_acc", analysis["target_acc"])
    train_m = milestone(log, "train_acc", analysis["phase_acc"])
    test_m = milestone(log, "test_acc", analysis["phase_acc"])
    last = log.loc[log.step.idxmax()]
    return {
        "steps_to_target": to_target,
        "generalized": bool(math.isfinite(to_target)),
        "train_milestone": train_m,
        "test_milestone": test_m,
        "phase": classify_phase(train_m, test_m, analysis["phase_gap"]),
        "final_step": int(last.step),
        "final_train_acc": float(last.train_acc),
        "final_test_acc": float(last.test_acc),
    }


def final_checkpoint_key_frequencies(run_dir: Path, threshold: float) -> list[int]:
    """Key frequencies (W_L's Fourier norms >= threshold x the largest) of the last checkpoint."""
    step, path = run_checkpoints(Path(run_dir))[-1]  # the train log's steps, or CheckpointError
    params, _, _ = load_weights(path)
    stacked = {name: value.unsqueeze(0) for name, value in params.items()}
    return final_key_frequencies([step], stacked, threshold)


def summarize_run(run_id: str, run: dict, run_dir: Path, analysis: dict, out: Path) -> None:
    """One row (parquet) per run: config values, milestones, phase and final key frequencies."""
    log = pd.read_parquet(Path(run_dir) / "train_log.parquet")
    # every run is a point of one of the sweeps (its `sweep` column says which)
    row = {"run_id": run_id, "role": "sweep", **flat_config(run), **summarize_log(log, analysis)}
    if run["p"] % 2 == 1 and run["op"] == "add" and model_config(run).is_one_layer:
        keys = final_checkpoint_key_frequencies(run_dir, analysis["key_freq_threshold"])
        row |= {"n_key_freqs": len(keys), "key_freqs": ",".join(map(str, keys))}
    else:  # key frequencies (W_L = W_out W_U) are defined for one layer on (a + b) mod p
        row |= {"n_key_freqs": math.nan, "key_freqs": ""}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([row]).to_parquet(out, index=False)
    log.assign(run_id=run_id).to_parquet(Path(out).with_name("curve.parquet"), index=False)


# ---------------------------------------------------------------- aggregate


def summarize_runs(run_ids, runs, run_dirs, analysis, summaries, out_runs, out_curves) -> None:
    """Every run's summary row (summarize_run), then the collected tables (collect)."""
    for run_id, run_dir, out in zip(run_ids, run_dirs, summaries, strict=True):
        summarize_run(run_id, runs[run_id], Path(run_dir), analysis, Path(out))
    collect(summaries, out_runs, out_curves)


def collect(summaries: Sequence[Path], out_runs: Path, out_curves: Path) -> None:
    """Concatenate per-run rows (never recompute): runs.parquet, and the curves in long form."""
    runs = pd.concat([pd.read_parquet(p) for p in summaries], ignore_index=True)
    runs = runs.sort_values("run_id").reset_index(drop=True)
    runs.to_parquet(out_runs, index=False)
    curves = pd.concat(
        [pd.read_parquet(Path(p).with_name("curve.parquet")) for p in summaries], ignore_index=True
    )
    long = curves.melt(id_vars=["run_id", "step"], var_name="measure", value_name="value")
    long.to_parquet(out_curves, index=False)


def markers(runs_path: Path, out: Path) -> None:
    """Per-run marker values (run_id, marker, value) for markers.yaml.

    - steps_to_target: per run (NaN if it never generalized).
    - fraction_trend: Spearman correlation, within each (op, seed) of the fraction sweep, between
      training fraction and steps to target with non-generalizing runs counted as +inf (rank
      last); negative means fewer steps at larger fractions. Stored on each run of that group.
    - fraction_trend_shifted: the same with the fractions shifted by one place (the null).
    - phase_<name>: 1 if the run is in that phase; n_phases: the number of distinct phases in the
      phase sweep of the run's seed (stored on each of its runs); n_phases_fixed_wd: the same
      within the run's (seed, decoder weight decay) column (the null).
    - final_test_acc, generalized.
    """
    runs = pd.read_parquet(runs_path)
    rows = []
    for _, run in runs.iterrows():
        rows += [
            (run.run_id, "steps_to_target", run.steps_to_target),
            (run.run_id, "final_test_acc", run.final_test_acc),
            (run.run_id, "generalized", float(run.generalized)),
        ]
        rows += [(run.run_id, f"phase_{p}", float(run.phase == p)) for p in PHASES]
    fraction = runs[runs.sweep == "fraction"]
    for _, group in fraction.groupby(["op", "seed"]):
        fractions, steps = group.frac_train.to_numpy(), group.steps_to_target.to_numpy()
        rows += [(rid, "fraction_trend", fraction_trend(fractions, steps)) for rid in group.run_id]
        # the null: the same steps against the fractions shifted by one place (a fixed
        # permutation), so that steps no longer follow the fraction
        shifted = fraction_trend(np.roll(np.sort(fractions), 1), steps[np.argsort(fractions)])
        rows += [(rid, "fraction_trend_shifted", shifted) for rid in group.run_id]
    phase = runs[runs.sweep == "phase"]
    for _, group in phase.groupby("seed"):
        rows += [(rid, "n_phases", float(group.phase.nunique())) for rid in group.run_id]
        # the null: phases counted with the decoder weight decay held fixed (lr varies alone)
        for _, column in group.groupby("weight_decay"):
            rows += [
                (rid, "n_phases_fixed_wd", float(column.phase.nunique())) for rid in column.run_id
            ]
    table = pd.DataFrame(rows, columns=["run_id", "marker", "value"])
    table["value"] = table.value.astype(float)
    table.to_parquet(out, index=False)


def fraction_trend(fractions: np.ndarray, steps: np.ndarray) -> float:
    """Spearman rank correlation of steps-to-target with training fraction (never = +inf);
    0 when every fraction took equally long (e.g. none generalized), NaN for a single fraction."""
    if len(fractions) < 2:
        return math.nan
    steps = np.where(np.isfinite(steps), steps, np.inf)
    x = pd.Series(fractions).rank().to_numpy()
    y = pd.Series(steps).rank().to_numpy()
    if x.std() == 0:
        return math.nan
    if y.std() == 0:  # every fraction took as long (or none generalized): no trend
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def numbers(runs_path: Path, out: Path) -> None:
    """The numbers the paper quotes, as {name: value} JSON (macros \\scaling<Name>)."""
    runs = pd.read_parquet(runs_path)
    result: dict = {"n_runs": len(runs)}
    fraction = runs[runs.sweep == "fraction"]
    if len(fraction):
        result |= {
            "fraction_model": describe_model(fraction.iloc[0]),
            "p": int(fraction.p.iloc[0]),
            "budget": int(fraction.steps.iloc[0]),
            "n_ops": int(fraction.op.nunique()),
            "ops": ", ".join(sorted(fraction.op.unique())),
            "n_seeds": int(fraction.seed.nunique()),
            "fractions": ", ".join(f"{f:g}" for f in sorted(fraction.frac_train.unique())),
            "n_fraction_runs": len(fraction),
            "n_not_generalized": int((~fraction.generalized).sum()),
        }
        add = fraction[fraction.op == "add"].groupby("frac_train").steps_to_target.agg(median_steps)
        if len(add):
            result["add_steps_low_frac"] = _num(add.iloc[0])
            result["add_steps_high_frac"] = _num(add.iloc[-1])
            result["add_low_frac"] = float(add.index[0])
            result["add_high_frac"] = float(add.index[-1])
    phase = runs[runs.sweep == "phase"]
    if len(phase):
        counts = phase.phase.value_counts()
        result |= {f"n_{p}": int(counts.get(p, 0)) for p in PHASES}
        result["n_phase_runs"] = len(phase)
        result["n_phases"] = int(phase.phase.nunique())
        result["phase_budget"] = int(phase.steps.iloc[0])
    width = runs[runs.sweep == "width"].sort_values("d_model")
    if len(width):
        result["widths"] = ", ".join(str(int(w)) for w in width.d_model.unique())
        result["width_key_freqs"] = ", ".join(_count(n) for n in width.n_key_freqs)
        result["width_steps"] = ", ".join(_count(s) for s in width.steps_to_target)
    decay = runs[runs.sweep == "weight_decay"]
    control = decay[decay.weight_decay == 0]
    if len(control):
        result["control_test_acc"] = float(control.final_test_acc.max())
        result["control_budget"] = int(control.steps.iloc[0])
    write_numbers(result, out)


def describe_model(run: pd.Series) -> str:
    """How the paper names a run's model and batching, from its config columns (a key missing
    from a run's config reads as NaN in the runs table, and means the default)."""

    def value(key, default):
        found = run.get(key, default)
        missing = found is None or (isinstance(found, float) and math.isnan(found))
        return default if missing else found

    shape = {key: run[key] for key in MODEL_KEYS if key in run}  # the row has results too
    shape |= {
        "n_layers": int(value("n_layers", 1)),
        "normalization": value("normalization", "none"),
    }
    cfg = model_config(shape)
    if cfg.is_one_layer:
        model = "One-layer transformers (the fast exact model of the grokking section)"
    else:
        norm = " pre-LayerNorm" if cfg.normalization == "LN" else ""
        model = f"{cfg.n_layers}-layer{norm} transformers (Power et al.'s decoder)"
    batch = value("batch_size", None)
    if batch is None:
        return f"{model} at full batch"
    return (
        f"{model} on minibatches of at most {int(batch)} examples (half the training set if "
        "smaller)"
    )


def median_steps(steps) -> float:
    """Median steps-to-target over seeds with never (NaN) counted as slowest; NaN if the median
    run never got there."""
    values = np.where(np.isfinite(steps), steps, np.inf)
    med = float(np.median(values)) if len(values) else math.nan
    return med if math.isfinite(med) else math.nan


def _num(x: float):
    return int(x) if math.isfinite(x) else "never"


def _count(x: float) -> str:
    return str(int(x)) if math.isfinite(x) else "never"
