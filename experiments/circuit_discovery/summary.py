"""Collect the zoo and over-training tables; the markers' values per run; the paper's numbers.

A run of the markers is one (task, model, seed): model "compiled" (role canonical) or "random"
(the random-weight null, role null). Its values are the AUC of every method under every ablation
(`acdc_zero`, `eap_resample`, ...), EAP's gap to ACDC under zero ablation and the same gap with
EAP's scores shuffled (the null of that gap), and the compiled model's checks (controls).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alignlab.results import write_markers, write_numbers

MODELS = ("compiled", "random")


def run_id(task: str, model: str, seed: int) -> str:
    return f"{task}-{model}-seed{int(seed)}"


def zoo_runs(block: dict) -> dict[str, dict]:
    """{run_id: {task, model, seed}} of a scale block: every task x model x seed."""
    zoo = block["zoo"]
    return {
        run_id(task, model, seed): {"task": task, "model": model, "seed": seed}
        for task in zoo["tasks"]
        for model in MODELS
        for seed in zoo["seeds"]
    }


def collect(runs: dict, auc_paths, roc_paths, check_paths, training_paths, training_ids):
    """The stacked tables: auc, roc, checks, training (with the grokking run_id); the AUC table
    must hold exactly the configured runs."""
    auc = pd.concat([pd.read_parquet(p) for p in auc_paths], ignore_index=True)
    roc = pd.concat([pd.read_parquet(p) for p in roc_paths], ignore_index=True)
    checks = pd.concat([pd.read_parquet(p) for p in check_paths], ignore_index=True)
    training = pd.concat(
        [
            pd.read_parquet(p).assign(run_id=rid)
            for rid, p in zip(training_ids, training_paths, strict=True)
        ],
        ignore_index=True,
    )
    found = {run_id(t, m, s) for t, m, s in zip(auc.task, auc.model, auc.seed, strict=True)}
    if found != set(runs):
        missing, extra = sorted(set(runs) - found), sorted(found - set(runs))
        raise ValueError(
            f"AUC tables do not hold the configured runs: missing {missing}, extra {extra}"
        )
    return auc, roc, checks, training


def marker_values(auc: pd.DataFrame, checks: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """({run_id: {marker: value}}, runs table)."""
    values, runs = {}, []
    for (task, model, seed), group in auc.groupby(["task", "model", "seed"], sort=True):
        rid = run_id(task, model, seed)
        row = {
            f"{m}_{a}": float(v)
            for m, a, v in zip(group.method, group.ablation, group.auc, strict=True)
        }
        row["eap_minus_acdc_zero"] = row["eap_zero"] - row["acdc_zero"]
        row["eap_shuffled_minus_acdc_zero"] = row["eap_shuffled_zero"] - row["acdc_zero"]
        if model == "compiled":
            task_checks = checks[checks.task == task]
            row |= dict(zip(task_checks.check, task_checks.value.astype(float), strict=True))
        values[rid] = row
        role = "canonical" if model == "compiled" else "null"
        runs.append({"run_id": rid, "role": role, "task": task, "model": model, "seed": int(seed)})
    return values, pd.DataFrame(runs)


def precision_lift(training: pd.DataFrame) -> pd.Series:
    """(precision - chance) / (1 - chance), chance = the Fourier neurons' share of all neurons:
    0 for a random set of neurons, 1 when every kept neuron is a Fourier neuron."""
    chance = training.n_fourier / training.d_mlp
    return (training.precision - chance) / (1 - chance)


def sees_step(training: pd.DataFrame, lift: float) -> dict[str, float]:
    """Per grokking run: the first analysed step from which the discovered neurons' precision
    lift over chance stays at or above `lift` (NaN if never)."""
    out = {}
    training = training.assign(lift=precision_lift(training))
    for rid, rows in training.sort_values("step").groupby("run_id"):
        ok = (rows.lift >= lift).to_numpy()
        later_all = np.flip(np.logical_and.accumulate(np.flip(ok)))
        out[rid] = float(rows.step.to_numpy()[later_all][0]) if later_all.any() else float("nan")
    return out


def gate_step(training: pd.DataFrame) -> dict[str, float]:
    """Per run: the first analysed step with a circuit to find (the loss gap open; not NaN)."""
    defined = training[training.n_nodes.notna()]
    return {rid: float(rows.step.min()) for rid, rows in defined.groupby("run_id")}


def numbers(auc, training, falls: dict, seeds: dict[str, int], analysis: dict) -> dict:
    """The values the paper quotes (AUCs: means over seeds). `falls`: {grokking run_id:
    {"restricted_fall": step, "test_fall": step}} from the grokking markers."""
    out: dict[str, object] = {}
    means = auc.groupby(["task", "model", "ablation", "method"]).auc.mean()
    for (task, model, ablation, method), value in means.items():
        out[f"{task}_{model}_{method}_{ablation}"] = float(value)
    out["n_seeds"] = float(auc.seed.nunique())
    out["n_tasks"] = float(auc.task.nunique())
    seen, texts = sees_step(training, analysis["see_lift"]), []
    gates = gate_step(training)
    events = {"restricted": 0, "test": 0}  # seeds where discovery saw the circuit after / before
    for rid in sorted(seen, key=seeds.get):
        fall = falls.get(rid, {})
        restricted, test = fall.get("restricted_fall", np.nan), fall.get("test_fall", np.nan)
        texts.append(
            f"seed {seeds[rid]}: step {_step(seen[rid])} (a circuit to find from "
            f"{_step(gates.get(rid, np.nan))}; restricted loss fell at {_step(restricted)}, "
            f"test loss at {_step(test)})"
        )
        events["restricted"] += bool(seen[rid] > restricted)
        events["test"] += bool(seen[rid] < test)
    out["sees_by_seed"] = "; ".join(texts)
    out["n_runs_seen_after_restricted_fall"] = float(events["restricted"])
    out["n_runs_seen_before_test_fall"] = float(events["test"])
    out["n_training_runs"] = float(len(seen))
    # each run's last analysed checkpoint (a NaN there stays NaN, never an earlier value)
    last = training.sort_values("step").groupby("run_id").tail(1).set_index("run_id")
    out["final_precision"] = float(last.precision.mean())
    out["final_recall"] = float(last.recall.mean())
    out["final_n_nodes"] = float(last.n_nodes.mean())
    out["see_lift"] = float(analysis["see_lift"])
    out["chance_precision"] = float((training.n_fourier / training.d_mlp).mean())
    out["final_lift"] = float(precision_lift(last.reset_index()).mean())
    out["faithfulness_pct"] = 100 * float(analysis["faithfulness"])
    return out


def _step(value: float) -> str:
    return "never" if np.isnan(value) else f"{int(value):,}"


def loss_falls(grokking_markers: pd.DataFrame) -> dict:
    """{run_id: {restricted_fall, test_fall}}: when each loss fell below half of chance."""
    rows = grokking_markers[grokking_markers.marker.isin(["restricted_fall", "test_fall"])]
    return rows.pivot(index="run_id", columns="marker", values="value").to_dict("index")


def summarize(
    runs, zoo_paths: dict, training_paths, training_seeds: dict, grokking_markers, analysis, out
) -> None:
    """`training_seeds`: {grokking run_id: seed}, in the order of `training_paths`."""
    auc, roc, checks, training = collect(
        runs,
        zoo_paths["auc"],
        zoo_paths["roc"],
        zoo_paths["checks"],
        training_paths,
        list(training_seeds),
    )
    values, runs = marker_values(auc, checks)
    write_markers(values, out.markers)
    runs.to_parquet(out.runs, index=False)
    auc.to_parquet(out.auc, index=False)
    roc.to_parquet(out.roc, index=False)
    training.to_parquet(out.training, index=False)
    falls = loss_falls(pd.read_parquet(grokking_markers))
    write_numbers(numbers(auc, training, falls, training_seeds, analysis), out.numbers)
