"""The reward experiment's runs: the two sweeps and the ensemble expanded from the config block,
their collection into tidy tables, and the same-size nulls' rows.

A config block (experiments/reward/config.yaml) has `env`, `pool`, `defaults` (a run), `sweeps`
(`rm_size: {d_model: [...]}` at the defaults' data size, `data_size: {n_pairs: [...]}` at the
defaults' RM size; each sweep may name its own `seeds`), `seeds` (each sets the RM init seed
and the pairs' seed) and `oracle` (one run with proxy = gold). Runs shared by both sweeps (same
resolved config) are trained once. `ensemble` (Coste et al. 2023): for each of its `data_seeds`,
`members` RMs (init seeds) trained on the same pairs with the `run` overrides (e.g. 25% flipped
labels); their pool scores are combined by each rule of `experiments.reward.bon.ENSEMBLE_RULES`
without retraining (`experiments.reward.summary.ensemble`).
"""

from __future__ import annotations

import json

import pandas as pd

from alignlab.provenance import config_hash
from alignlab.results import stack_runs

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


def train_groups(runs: dict[str, dict], vary: tuple[str, ...]) -> dict[str, list[str]]:
    """{group id: [run ids]}: runs that differ only in the `vary` keys (their seeds) train
    together as one stacked job (`alignlab.preference.stacked`): a sweep cell's seeds
    (vary seed and data seed: each run keeps its own pairs) or an ensemble's members (vary the
    init seed: they share their pairs). The oracle trains nothing and is in no group."""
    groups: dict[str, list[str]] = {}
    for rid, run in sorted(runs.items()):
        if run["oracle"]:
            continue
        shared = {k: v for k, v in run.items() if k not in vary}
        gid = f"dm{run['d_model']}-pairs{run['n_pairs']}-{config_hash(shared)}"
        groups.setdefault(gid, []).append(rid)
    return groups


def expand_trained(block: dict) -> dict[str, dict]:
    """Every run the experiment trains: its sweeps' runs and oracle, and the ensemble members."""
    return {**expand_runs(block)[0], **expand_ensemble(block)[0]}


def data_id(spec: dict) -> str:
    return config_hash(spec)


def collect(run_ids, runs, cells, bon_tables, log_tables, out_bon, out_logs, out_runs) -> None:
    """Concatenate per-run tables (never recompute); runs.parquet with sweep membership.

    cells may hold "ensemble:<data_seed>" keys (the members of one ensemble): their runs are
    marked `in_ensemble`; their bon rows are each member's own best-of-n curve."""
    stack_runs(run_ids, bon_tables).to_parquet(out_bon, index=False)
    logs = stack_runs(run_ids, log_tables)
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
                "role": "run",
                **flat,
                "n_params": int(n_params.get(rid, 0)),
                "heldout_accuracy": float(acc.get(rid, float("nan"))),
                "in_rm_sweep": "rm_size" in member[rid],
                "in_data_sweep": "data_size" in member[rid],
                "in_ensemble": "ensemble" in member[rid],
            }
        )
    for null in null_rows(runs, cells):
        rows.append(
            null | {"n_params": 0, "heldout_accuracy": float("nan"), "oracle": False}
            | dict.fromkeys(("in_rm_sweep", "in_data_sweep", "in_ensemble"), False)
        )  # fmt: skip
    pd.DataFrame(rows).to_parquet(out_runs, index=False)


NULL_ROLES = {"rm_size": "null_rm", "data_size": "null_data", "ensemble": "null_ensemble"}


def null_rows(runs: dict, cells: dict) -> list[dict]:
    """Rows of runs.parquet that are not trained runs but the same-size nulls of the markers: one
    per seed of each sweep (and per ensemble), role null_rm / null_data / null_ensemble. Their
    marker values (marker_values) compare two disjoint halves of the prompts of ONE cell under the
    same names as the real comparison, so the same rule can be applied where it must fail."""
    out = []
    for sweep, role in NULL_ROLES.items():
        keys = [k for k in cells if k.split(":")[0] == sweep]
        seeds = sorted({int(runs[r]["data_seed" if sweep == "ensemble" else "seed"])
                        for k in keys for r in cells[k]})  # fmt: skip
        out += [{"run_id": f"{role}-seed{s}", "role": role, "seed": s} for s in seeds]
    return out


def cell_key(sweep: str, value) -> str:
    return f"{sweep}:{value}"
