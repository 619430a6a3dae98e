"""length_shortcut: a reward model learns "longer is better" from biased pairs, watched from inside.

After Singhal et al. 2023 (paper/references.bib: singhal2023long). The
environment, the reward model and its training loop are the ones the reward experiment uses
(`alignlab.preference.env`, `.model`, `.train.train_rm`); the pairs are labelled by gold and then,
with probability `length_bias`, relabelled "the longer completion wins"
(`make_pairs(..., length_bias=...)`), so that longer completions win more often than gold implies.
A control run (length_bias 0, same seed, same pairs before relabelling, same init) shows that
the shortcut comes from the data.

Per run: `train` writes checkpoints at log-spaced steps and a training log; `measure` loads each
checkpoint into a TransformerLens bridge and computes the internal and behavioural measures of
`experiments.length_shortcut.shortcut` (definitions in its docstring) on evaluation sets drawn
once; then `summarize` concatenates the runs, takes onsets (the step at which a signal has made
half of its rise) and per-run marker values, and writes the numbers the paper quotes.

Tidy tables: per run [step, measure, component, value]; collected with run_id.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.checkpoints import load_weights, run_checkpoints
from alignlab.config import check_run
from alignlab.preference.env import Env, EnvConfig, make_pairs
from alignlab.preference.model import RMConfig, n_params
from alignlab.preference.train import rm_config, train_rm
from alignlab.provenance import provenance, write_json
from alignlab.results import stack_runs, write_numbers
from alignlab.runtime import resolve_device
from experiments.length_shortcut.shortcut import (
    checkpoint_measures,
    eval_sets,
    onset_step,
    relative_to_step0,
)

# Signals whose onsets are compared: (name, measure, component, kind). "last" is the last
# layer's residual, "mid" the one before it (the embedding for one layer).
SIGNALS = [
    ("head_align", "head_align_length", "last", "internal"),
    ("probe", "probe_length_rel", "last", "internal"),
    ("patch", "patch_effect", "mid", "internal"),
    ("wg_corr", "wg_corr_reward_length", "", "behaviour"),
    ("acc_gap", "acc_gap", "", "behaviour"),
]
# the comparison that answers the open question: does an internal signal show the shortcut
# before behaviour does? (reported in numbers.json, not scored as a marker)
INTERNAL, BEHAVIOUR = "head_align", "wg_corr"
# other levels of the onset for those two signals, to show how the ordering depends on the level
SENSITIVITY = {"early": 0.25, "late": 0.75}


def longer_wins_fraction(pairs: dict[str, np.ndarray]) -> float:
    """Fraction of pairs of unequal length in which the longer completion is chosen."""
    differ = pairs["chosen_eos"] != pairs["rejected_eos"]
    return float((pairs["chosen_eos"] > pairs["rejected_eos"])[differ].mean())


def train(run: dict, env_dict: dict, run_dir, out_log, out_provenance, threads: int = 1) -> None:
    """Pairs (gold labels, then the length bias), one RM trained with checkpoints, the log."""
    check_run(run, run_dir, fallback="length_shortcut")  # before any file is written
    run_dir = Path(run_dir)
    device = resolve_device(run["device"])
    env = Env(EnvConfig.from_dict(env_dict))
    t0 = time.perf_counter()
    pairs = make_pairs(env, run["n_pairs"], run["seed"], length_bias=run["length_bias"])
    longer = longer_wins_fraction(pairs)
    agree = float((pairs["chosen_gold"] >= pairs["rejected_gold"]).mean())
    print(
        f"{run['n_pairs']} pairs, length_bias {run['length_bias']}: the longer completion wins "
        f"{longer:.3f} of unequal-length pairs; labels agree with gold on {agree:.3f}"
    )
    cfg = rm_config(run, env_dict)
    _, rows = train_rm(run, cfg, pairs, run_dir, device)
    rows += [
        {"step": 0, "measure": "longer_wins_frac", "value": longer},
        {"step": 0, "measure": "gold_agree_frac", "value": agree},
        {"step": 0, "measure": "n_params", "value": float(n_params(cfg))},
    ]
    pd.DataFrame(rows, columns=["step", "measure", "value"]).to_parquet(out_log, index=False)
    write_json(
        provenance(run, device, threads, seconds=time.perf_counter() - t0, rm_config=cfg.to_dict()),
        out_provenance,
    )


def measure(run: dict, env_dict: dict, analysis: dict, run_dir, train_log, out) -> None:
    """Every checkpoint in the bridge -> measures.parquet [step, measure, component, value]."""
    from alignlab.bridge import to_bridge

    env = Env(EnvConfig.from_dict(env_dict))
    sets = eval_sets(
        env,
        analysis["n_groups"],
        analysis["group_size"],
        analysis["shift"],
        analysis["eval_seed"],
    )
    rows = []
    t0 = time.perf_counter()
    checkpoints = run_checkpoints(Path(run_dir), Path(train_log))  # the log's steps, all there
    for step, path in checkpoints:
        params, _, model_cfg = load_weights(path)
        cfg = RMConfig(**model_cfg)
        bridge = to_bridge(params, cfg)
        for row in checkpoint_measures(bridge, params, cfg, sets, analysis["ridge"]):
            rows.append({"step": step, **row})
    frame = relative_to_step0(pd.DataFrame(rows))
    log = pd.read_parquet(train_log)
    keep = log.measure.isin(["eval_accuracy", "train_loss", "longer_wins_frac", "gold_agree_frac"])
    frame = pd.concat([frame, log[keep].assign(component="")], ignore_index=True)
    frame = frame[["step", "measure", "component", "value"]]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    final = frame[frame.step == frame.step.max()].set_index(["measure", "component"])["value"]
    print(
        f"{len(checkpoints)} checkpoints measured in {time.perf_counter() - t0:.1f} s; final "
        f"within-group reward-length corr {final['wg_corr_reward_length', '']:.3f}, accuracy "
        f"chosen longer {final['acc_chosen_longer', '']:.3f} / shorter "
        f"{final['acc_chosen_shorter', '']:.3f}"
    )


# ----- collection, onsets, markers, numbers ------------------------------------------------------
def _series(table: pd.DataFrame, measure: str, component: str) -> pd.Series:
    rows = table[(table.measure == measure) & (table.component == component)]
    return rows.set_index("step")["value"].sort_index()


def _component(component: str, n_layers: int) -> str:
    if component == "last":
        return f"block{n_layers - 1}"
    if component == "mid":
        return f"block{n_layers - 2}" if n_layers > 1 else "embed"
    return component


def run_values(
    table: pd.DataFrame, n_layers: int, frac: float, control: pd.DataFrame | None = None
) -> dict[str, float]:
    """Per-run values: onsets of every signal (of its excess over `control`, the paired control
    run, when given), final behaviour and alignment, the data's longer-wins rate."""
    values = {}
    for name, measure_name, component, _ in SIGNALS:
        series = _series(table, measure_name, _component(component, n_layers))
        if control is not None:
            series = series - _series(control, measure_name, _component(component, n_layers))
        values[f"onset_{name}"] = onset_step(series.index.to_numpy(), series.to_numpy(), frac)
        if name in (INTERNAL, BEHAVIOUR):  # how much the ordering depends on the level
            for word, level in SENSITIVITY.items():
                values[f"onset_{word}_{name}"] = onset_step(
                    series.index.to_numpy(), series.to_numpy(), level
                )
    final = table[table.step == table.step.max()].set_index(["measure", "component"])["value"]
    for name in (
        "wg_corr_reward_length",
        "wg_corr_reward_gold",
        "acc_chosen_longer",
        "acc_chosen_shorter",
        "acc_balanced",
        "acc_gap",
        "shift_effect",
    ):
        values[f"final_{name}"] = float(final[name, ""])
    values["final_head_align_length"] = float(final["head_align_length", f"block{n_layers - 1}"])
    values["final_head_align_gold"] = float(final["head_align_gold", f"block{n_layers - 1}"])
    values["final_attr_length"] = float(final["attr_length", "total"])
    wg = _series(table, "wg_corr_reward_length", "")
    values["peak_wg_corr_reward_length"] = float(wg.max())
    values["mean_wg_corr_reward_length"] = float(wg.iloc[1:].mean())
    values["longer_wins_frac"] = float(_series(table, "longer_wins_frac", "").iloc[0])
    return values


def _stack_runs(run_ids, runs, tables, out) -> pd.DataFrame:
    """Write measures.parquet (the runs' tables with run_id) and runs.parquet; return measures."""
    measures = stack_runs(run_ids, tables)
    measures.to_parquet(out.measures, index=False)
    runs_rows = []
    for rid in run_ids:
        run = runs[rid]
        runs_rows.append({"run_id": rid, **run, "biased": run["length_bias"] > 0})
    runs_frame = pd.DataFrame(runs_rows)
    runs_frame.to_parquet(out.runs, index=False)
    return measures


def _per_run_values(run_ids, runs, measures: pd.DataFrame, frac: float) -> dict[str, dict]:
    """run_id -> its marker values (run_values), with the reference control's length
    correlations as control_* (the biased run's paired control; a control's next-seed control)."""
    # each biased run is paired with the control of the same seed (or else the first control);
    # onsets are taken on the biased run's excess over it
    controls = {runs[r]["seed"]: r for r in run_ids if runs[r]["length_bias"] == 0}
    paired = {
        rid: controls.get(runs[rid]["seed"], next(iter(controls.values()))) if controls else None
        for rid in run_ids
    }
    tables = {rid: measures[measures.run_id == rid] for rid in run_ids}
    per_run = {}
    for rid in run_ids:
        control = paired[rid] if runs[rid]["length_bias"] > 0 else None
        per_run[rid] = run_values(
            tables[rid], runs[rid]["n_layers"], frac, tables[control] if control else None
        )
    # A control is compared with the next seed's control (cyclically): both were trained without
    # the bias, so any excess is seed-to-seed noise. That is the null of the length markers.
    control_ids = sorted(controls.values(), key=lambda r: runs[r]["seed"])
    reference = dict(paired)
    for i, rid in enumerate(control_ids):
        reference[rid] = control_ids[(i + 1) % len(control_ids)]
    for rid in run_ids:
        if reference[rid] is None:
            continue
        for key in ("final_wg_corr_reward_length", "mean_wg_corr_reward_length"):
            per_run[rid][f"control_{key}"] = per_run[reference[rid]][key]
    return per_run


def _median(per_run: dict[str, dict], ids, key: str) -> float:
    """Median of one value over some runs, NaN-skipping; NaN when none is finite."""
    vals = [per_run[r][key] for r in ids]
    return float(np.nanmedian(vals)) if vals and np.isfinite(vals).any() else float("nan")


def _setup_numbers(run_ids, runs, measures, analysis, env_dict, per_run, biased, control) -> dict:
    """The setup the text states, what gold alone implies, and how often the longer side wins."""
    env = Env(EnvConfig.from_dict(env_dict))
    gold_only = make_pairs(env, 20_000, 0)  # what gold alone implies
    run0 = runs[run_ids[0]]
    return {
        "n_runs": len(run_ids),
        "n_seeds": len({runs[r]["seed"] for r in biased}),
        "n_controls": len(control),
        "length_bias": float(runs[biased[0]]["length_bias"]) if biased else 0.0,
        "n_pairs": int(run0["n_pairs"]),
        "d_model": int(run0["d_model"]),
        "n_layers": int(run0["n_layers"]),
        "n_steps": int(measures.step.max()),
        "n_checkpoints": int(measures.step.nunique()),
        "n_groups": int(analysis["n_groups"]),
        "group_size": int(analysis["group_size"]),
        "shift": int(analysis["shift"]),
        "onset_frac": float(analysis["onset_frac"]),
        "onset_frac_early": SENSITIVITY["early"],
        "onset_frac_late": SENSITIVITY["late"],
        "gold_longer_wins": longer_wins_fraction(gold_only),
        "gold_wg_corr": float(
            measures.loc[measures.measure == "wg_corr_gold_length", "value"].iloc[0]
        ),
        "longer_wins": _median(per_run, biased, "longer_wins_frac"),
        "control_longer_wins": _median(per_run, control, "longer_wins_frac"),
    }


# final_<key> per-run values, under the short names the paper's macros use
FINAL_NAMES = {
    "wg_corr_reward_length": "wg_corr",
    "acc_chosen_longer": "acc_longer",
    "acc_chosen_shorter": "acc_shorter",
    "acc_balanced": "acc_balanced",
    "acc_gap": "acc_gap",
    "head_align_length": "head_align_length",
    "head_align_gold": "head_align_gold",
    "attr_length": "attr_length",
    "shift_effect": "shift_effect",
}


def _final_numbers(per_run, biased, control) -> dict:
    """Medians of the final values (and the peak length correlation), biased vs control runs."""
    numbers = {}
    for key, short in FINAL_NAMES.items():
        numbers[f"final_{short}"] = _median(per_run, biased, f"final_{key}")
        numbers[f"control_final_{short}"] = _median(per_run, control, f"final_{key}")
    numbers["peak_wg_corr"] = _median(per_run, biased, "peak_wg_corr_reward_length")
    numbers["control_peak_wg_corr"] = _median(per_run, control, "peak_wg_corr_reward_length")
    return numbers


def _onset_numbers(per_run, biased) -> dict:
    """Median onsets, and in how many biased runs the internal signal rises before the behaviour
    (at the onset fraction and its sensitivity variants); the answer in words."""
    numbers = {}
    for name, *_ in SIGNALS:
        numbers[f"onset_{name}"] = _median(per_run, biased, f"onset_{name}")
    numbers["internal_first"] = sum(
        per_run[r][f"onset_{INTERNAL}"] < per_run[r][f"onset_{BEHAVIOUR}"] for r in biased
    )
    for word in SENSITIVITY:
        numbers[f"internal_first_{word}"] = sum(
            per_run[r][f"onset_{word}_{INTERNAL}"] < per_run[r][f"onset_{word}_{BEHAVIOUR}"]
            for r in biased
        )
        for name in (INTERNAL, BEHAVIOUR):
            numbers[f"onset_{word}_{name}"] = _median(per_run, biased, f"onset_{word}_{name}")
    numbers["any_internal_first"] = sum(
        min(per_run[r][f"onset_{n}"] for n, *_, kind in SIGNALS if kind == "internal")
        < min(per_run[r][f"onset_{n}"] for n, *_, kind in SIGNALS if kind == "behaviour")
        for r in biased
    )
    n_first = numbers["internal_first"]
    numbers["answer"] = (
        "no biased run"
        if not biased
        else "internal first in every seed"
        if n_first == len(biased)
        else "behaviour first in every seed"
        if n_first == 0
        else "mixed across seeds"
    )
    return numbers


def summarize(run_ids, runs, tables, analysis: dict, env_dict: dict, out) -> None:
    """measures / runs / markers parquet and numbers.json (see the module docstring)."""
    measures = _stack_runs(run_ids, runs, tables, out)
    per_run = _per_run_values(run_ids, runs, measures, analysis["onset_frac"])
    markers = pd.DataFrame(
        [{"run_id": r, "marker": k, "value": v} for r in run_ids for k, v in per_run[r].items()]
    )
    markers.to_parquet(out.markers, index=False)

    biased = [r for r in run_ids if runs[r]["length_bias"] > 0]
    control = [r for r in run_ids if runs[r]["length_bias"] == 0]
    numbers = _setup_numbers(run_ids, runs, measures, analysis, env_dict, per_run, biased, control)
    numbers |= _final_numbers(per_run, biased, control)
    numbers |= _onset_numbers(per_run, biased)
    numbers = {k: _plain(v) for k, v in numbers.items()}
    write_numbers(numbers, out.numbers)
    order = sorted(
        ((numbers[f"onset_{n}"], n) for n, *_ in SIGNALS), key=lambda x: (np.isnan(x[0]), x[0])
    )
    print("median onsets (biased runs):", ", ".join(f"{n} {s:.1f}" for s, n in order))


def _plain(value):
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else "n/a"
    return value
