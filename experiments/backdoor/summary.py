"""Collect the audits and the calibration; per-run marker values; the numbers the paper quotes.

runs.parquet has one row per audited run (part "audit": role canonical = backdoored at the main
size, control = its twin, sweep = the size sweep) and one per calibration seed (part
"calibration"), so every marker's runs and null are a query over one table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from alignlab import results

# final-checkpoint values every audited run reports as a marker value
AUDIT_VALUES = (
    "mahalanobis_best_auroc_trigger",
    "mahalanobis_best_auroc_benign",
    "probe_auroc_trigger",
    "probe_auroc_benign",
    "mechanistic_auroc_trigger",
    "mechanistic_auroc_benign",
    "spectral_recovered",
    "clustering_recovered",
    "clean_acc",
    "backdoor_success",
    "trigger_add_acc",
    "mechanistic_n_keys",
    "spectral_recoverable",
    "spectral_chance",
)
DETECTORS = {  # name in the paper -> the final measure of its trigger AUROC
    "mahalanobis": "mahalanobis_best_auroc_trigger",
    "probe": "probe_auroc_trigger",
    "mechanistic": "mechanistic_auroc_trigger",
}
BEHAVIOUR = ("backdoor_success", "clean_acc")
# final values quoted per seed beside the detectors' trigger AUROCs
PER_SEED = (
    "spectral_recovered",
    "clustering_recovered",
    "mechanistic_auroc_benign",
    "mahalanobis_best_auroc_benign",
    "mechanistic_n_keys",
    "spectral_recoverable",
    "spectral_chance",
)
CALIBRATION_NUMBERS = {  # paper name (TeX macros drop digits) -> calibration measure
    "mahalanobis_first": "mahalanobis_linear_0",
    "mahalanobis_second": "mahalanobis_linear_1",
    "mahalanobis_logits": "mahalanobis_linear_2",
    "probe": "probe_linear_1",
    "clean_acc": "clean_test_acc",
    "backdoor_success": "backdoor_success",
}


def final_values(measures: pd.DataFrame) -> pd.DataFrame:
    """[run_id x measure] at each run's last checkpoint, for the measures with one component
    (the per-hook Mahalanobis AUROCs have three and stay in measures.parquet)."""
    last = measures[measures.step == measures.groupby("run_id").step.transform("max")]
    single = last.groupby(["run_id", "measure"]).component.transform("nunique") == 1
    return last[single].pivot(index="run_id", columns="measure", values="value")


def _twin_pairs(runs: pd.DataFrame) -> list[tuple[str, str | None]]:
    """(backdoored run, its twin of the same seed or None), by seed."""
    audit = runs[runs.part == "audit"].sort_values("seed")
    twins = audit[audit.role == "control"].set_index("seed").run_id
    canonical = audit[audit.role == "canonical"]
    return [(rid, twins.get(seed)) for rid, seed in canonical[["run_id", "seed"]].itertuples(False)]


def _twin_gaps(final: pd.DataFrame, runs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per backdoored run and its twin: the behavioural gap between the two in points on clean
    inputs, and on trigger inputs (addition accuracy); NaN without a twin."""
    out = {}
    for rid, twin in _twin_pairs(runs):
        values = {
            f"{name}_gap_points": math.nan
            if twin is None
            else 100 * abs(final.loc[rid, measure] - final.loc[twin, measure])
            for name, measure in (("clean_acc", "clean_acc"), ("trigger_acc", "trigger_add_acc"))
        }
        out |= {rid: values} if twin is None else {rid: values, twin: values}
    return out


def marker_values(final: pd.DataFrame, runs: pd.DataFrame, calibration: pd.DataFrame) -> dict:
    values = {rid: {m: float(final.loc[rid, m]) for m in AUDIT_VALUES} for rid in final.index}
    for rid, gaps in _twin_gaps(final, runs).items():
        values[rid] |= gaps
    for seed, rows in calibration.groupby("seed"):
        values[f"calibration-seed{seed}"] = dict(
            zip(rows.measure, rows.value.astype(float), strict=True)
        )
    return values


def onset(steps: np.ndarray, values: np.ndarray, level: float) -> float:
    """The first checkpoint at which a curve is at or above `level` (NaN if never)."""
    above = np.flatnonzero(np.asarray(values) >= level)
    return float(np.asarray(steps)[above[0]]) if len(above) else math.nan


def _curve(measures: pd.DataFrame, run_id: str | None, measure: str) -> pd.Series:
    rows = measures[(measures.run_id == run_id) & (measures.measure == measure)]
    return rows.set_index("step").value.sort_index()


def chronology(measures: pd.DataFrame, runs: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per backdoored run: the onset step of the behaviour (backdoor success, clean accuracy), of
    every detector's AUROC, and of its contrast with the twin's AUROC (backdoored minus twin, the
    part of the detection the twin's same trigger tokens do not explain), whose onset is where it
    first reaches level - 1/2: as far above the twin as an AUROC at `level` is above chance."""
    rows = []
    for rid, twin in _twin_pairs(runs):
        row = {"run_id": rid}
        for name in (*BEHAVIOUR, *DETECTORS.values()):
            curve = _curve(measures, rid, name)
            row[name] = onset(curve.index, curve.values, level)
        for name, measure in DETECTORS.items():
            contrast = _curve(measures, rid, measure) - _curve(measures, twin, measure)
            row[f"{name}_contrast"] = onset(contrast.index, contrast.values, level - 0.5)
        rows.append(row)
    return pd.DataFrame(rows)


def _listed(values, whole: bool = False) -> str:
    """Per-seed values as the paper prints them: "never" for NaN (an onset never reached), steps
    and counts (`whole`) as integers, others to three decimals."""
    fmt = "{:.0f}" if whole else "{:.3f}"
    return ", ".join(
        fmt.format(v) if np.isfinite(v) else "never" for v in np.asarray(values, float)
    )


def _setup(canonical: pd.DataFrame) -> dict:
    first = canonical.iloc[0]
    out = {key: int(first[key]) for key in ("p", "d_model", "steps", "n_triggers")}
    out |= {key: float(first[key]) for key in ("trigger_share", "benign_share")}
    return out | {"n_seeds": int(canonical.seed.nunique())}


def _final_numbers(final, canonical, twins, measures) -> dict:
    """Per seed (backdoored, and the twins beside), the worst seed, intervals, random init."""
    out = {}
    for name in ("clean_acc", "backdoor_success", *DETECTORS.values(), *PER_SEED):
        whole = name == "mechanistic_n_keys"
        out[f"{name}_seeds"] = _listed(final.loc[canonical.index, name], whole)
        out[f"{name}_min"] = float(final.loc[canonical.index, name].min())
        out[f"twin_{name}_seeds"] = _listed(final.loc[twins.index, name], whole)
        out[f"twin_{name}_max"] = float(final.loc[twins.index, name].max())
    for name, measure in DETECTORS.items():
        low, high = (final.loc[canonical.index, f"{measure}_ci_{end}"] for end in ("low", "high"))
        out[f"{name}_ci_low_min"] = float(low.min())
        pairs = zip(low, high, strict=True)
        out[f"{name}_ci_seeds"] = "; ".join(f"[{a:.3f}, {b:.3f}]" for a, b in pairs)
        rows = measures[measures.measure == measure]
        init = rows[rows.step == 0].set_index("run_id")
        out[f"{name}_init_auroc_seeds"] = _listed(init.value.reindex(canonical.index))
        out[f"{name}_min_over_training"] = float(
            rows[rows.run_id.isin(canonical.index)].value.min()
        )
    return out


def order(detected: float, obeyed: float) -> str:
    """Where a detector's contrast onset falls against the behaviour's: before, same (the same
    checkpoint: the schedule cannot order them), after, or undefined (either never happened)."""
    if not (np.isfinite(detected) and np.isfinite(obeyed)):
        return "undefined"
    return "before" if detected < obeyed else "same" if detected == obeyed else "after"


def _chronology_numbers(chrono: pd.DataFrame) -> dict:
    out = {
        f"onset_{c}_seeds": _listed(chrono[c], whole=True) for c in chrono.columns.drop("run_id")
    }
    orders = []
    for name in DETECTORS:
        pairs = zip(chrono[f"{name}_contrast"], chrono["backdoor_success"], strict=True)
        found = [order(detected, obeyed) for detected, obeyed in pairs]
        out[f"{name}_order_seeds"] = ", ".join(found)
        out[f"n_seeds_{name}_before_behaviour"] = found.count("before")
        orders += found
    counts = {word: orders.count(word) for word in ("before", "same", "after", "undefined")}
    out["chronology_verdict"] = (
        "in every seed each detector told the backdoor from its tokens only after it was obeyed"
        if counts["after"] == len(orders)
        else "detector contrasts before, at, after the behaviour or undefined: "
        + ", ".join(str(counts[w]) for w in counts) + f" of {len(orders)} seed-detector pairs"
    )  # fmt: skip
    return out


def _size_numbers(final: pd.DataFrame, audit: pd.DataFrame) -> dict:
    sweep = audit[audit.role.isin(["canonical", "sweep"]) & ~audit.twin.astype(bool)]
    by_size = final.loc[sweep.index].join(sweep.d_model).groupby("d_model").mean(numeric_only=True)
    out = {"sizes": ", ".join(str(int(d)) for d in by_size.index)}
    out |= {f"size_{name}_auroc": _listed(by_size[m]) for name, m in DETECTORS.items()}
    return out | {"size_clean_acc": _listed(by_size["clean_acc"])}


def numbers(final, runs, calibration, chrono, measures) -> dict:
    """Everything the paper section quotes (lists are per seed, in seed order)."""
    audit = runs[runs.part == "audit"].sort_values("seed").set_index("run_id")
    canonical, twins = audit[audit.role == "canonical"], audit[audit.role == "control"]
    out = _setup(canonical) | _final_numbers(final, canonical, twins, measures)
    gaps = [v["clean_acc_gap_points"] for v in _twin_gaps(final, runs).values()]
    out["clean_gap_points_max"] = float(np.max(gaps)) if gaps else math.nan
    out |= _chronology_numbers(chrono) | _size_numbers(final, audit)
    cal = calibration.pivot_table(index="seed", columns="measure", values="value")
    out |= {f"calibration_{n}_seeds": _listed(cal[m]) for n, m in CALIBRATION_NUMBERS.items()}
    return out | {"calibration_n_seeds": int(len(cal))}


def summarize(
    run_ids, runs, roles, tables, score_tables, calibration_path, out, analysis, calibration_cfg
) -> None:
    """Stack the runs' tables -> measures, scores, runs, markers parquet and numbers.json."""
    measures = results.stack_runs(run_ids, tables)
    measures.to_parquet(out.measures, index=False)
    results.stack_runs(run_ids, score_tables).to_parquet(out.scores, index=False)
    calibration = pd.read_parquet(calibration_path)
    audit = {rid: {"part": "audit", **runs[rid]} for rid in run_ids}
    seeds = sorted(calibration.seed.unique())
    cal_runs = {f"calibration-seed{s}": {"part": "calibration", "seed": int(s)} for s in seeds}
    table = results.runs_table(
        [*run_ids, *cal_runs], audit | cal_runs, roles | dict.fromkeys(cal_runs, "canonical")
    )
    table.to_parquet(out.runs, index=False)
    final = final_values(measures)
    results.write_markers(marker_values(final, table, calibration), out.markers)
    chrono = chronology(measures, table, analysis["onset_level"])
    found = numbers(final, table, calibration, chrono, measures)
    found |= {"onset_level": analysis["onset_level"], "n_boot": analysis["n_boot"]}
    found |= {f"calibration_{key}": calibration_cfg[key] for key in ("steps", "batch_size")}
    found["calibration_poison_share"] = calibration_cfg["p_backdoor"]
    results.write_numbers(found, out.numbers)
    print(chrono.to_string())
