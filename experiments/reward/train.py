"""The reward experiment's runs: its datasets (pairs, the best-of-n pool, ensemble members'
scores) and its runs: a proxy reward model trained on gold-labelled pairs (TRL style,
`alignlab.preference.train`), then best-of-n on the pool. `run_group` trains the runs that
differ only in their seeds together (`alignlab.preference.stacked`), `run_experiment` one run
alone (the oracle, or any run by hand); both write the same files per run.

After training the proxy is recentred so that the base sampler (the pool, which is base samples)
scores 0 on average; gold is recentred the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alignlab.checkpoints import atomic_save
from alignlab.config import check_run
from alignlab.integrity import read_verified
from alignlab.preference.env import Env, EnvConfig, make_pairs, make_pool
from alignlab.preference.model import n_params, score
from alignlab.preference.stacked import train_stacked_rms
from alignlab.preference.train import rm_config, train_rm
from alignlab.provenance import provenance, write_json
from alignlab.runtime import resolve_device
from experiments.reward.bon import bon_curves, d_of_n, n_grid

PAIRS_FORMAT = "alignlab-reward-pairs-v2"  # v2: checksummed (alignlab.integrity)
POOL_FORMAT = "alignlab-reward-pool-v2"
SCORES_FORMAT = "alignlab-reward-scores-v2"


# ----- datasets ------------------------------------------------------------------------------
def _save_arrays(arrays: dict[str, np.ndarray], path: Path, fmt: str, meta: dict) -> None:
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    atomic_save(tensors, Path(path), {"format": fmt, "spec": json.dumps(meta, sort_keys=True)})


def _load_arrays(path: Path, fmt: str) -> dict[str, np.ndarray]:
    """Verified arrays (checksum, as for checkpoints) or CheckpointError naming the file."""
    return {k: v.numpy() for k, v in read_verified(Path(path), fmt)[0].items()}


def pairs_spec(run: dict, env: dict) -> dict:
    """What determines a pairs file: the environment, the seed, the labels and the largest size."""
    return {
        "env": env,
        "data_seed": run["data_seed"],
        "label": run["label"],
        "temperature": run["temperature"],
        "flip_rate": run["flip_rate"],
    }


def write_pairs(spec: dict, n_pairs: int, path: Path) -> None:
    env = Env(EnvConfig.from_dict(spec["env"]))
    pairs = make_pairs(
        env, n_pairs, spec["data_seed"], spec["label"], spec["temperature"], spec["flip_rate"]
    )
    pairs["chosen"] = pairs["chosen"].astype(np.uint8)
    pairs["rejected"] = pairs["rejected"].astype(np.uint8)
    agree = float((pairs["chosen_gold"] >= pairs["rejected_gold"]).mean())
    print(f"{n_pairs} pairs, labels agree with gold on {agree:.3f}")
    _save_arrays(pairs, path, PAIRS_FORMAT, spec | {"n_pairs": n_pairs})


def write_pool(env_dict: dict, pool: dict, path: Path) -> None:
    env = Env(EnvConfig.from_dict(env_dict))
    t0 = time.perf_counter()
    arrays = make_pool(env, pool["n_prompts"], pool["size"], pool["seed"])
    print(
        f"pool {pool['n_prompts']} prompts x {pool['size']} samples in "
        f"{time.perf_counter() - t0:.1f} s; gold mean {arrays['gold'].mean():.3f} sd "
        f"{arrays['gold'].std():.3f}; repetition penalty hit by {arrays['repeated'].mean():.3%}; "
        f"a star used beyond its limit by {(arrays['star_excess'] > 0).mean():.3%}"
    )
    _save_arrays(arrays, path, POOL_FORMAT, {"env": env_dict, "pool": pool})


def load_pairs(path: Path) -> dict[str, np.ndarray]:
    return _load_arrays(path, PAIRS_FORMAT)


def load_pool(path: Path) -> dict[str, np.ndarray]:
    return _load_arrays(path, POOL_FORMAT)


def save_scores(proxy: np.ndarray, path: Path, run: dict) -> None:
    """One RM's recentred scores of every pool sample (pool order), for ensembles."""
    _save_arrays({"proxy": proxy.astype(np.float32)}, Path(path), SCORES_FORMAT, run)


def load_scores(path: Path) -> np.ndarray:
    return _load_arrays(Path(path), SCORES_FORMAT)["proxy"].astype(np.float64)


# ----- one run ------------------------------------------------------------------------------
def _scored(model, cfg, rows: list[dict], pool: dict, gold: np.ndarray):
    """Score the pool with a trained proxy: (recentred proxy, train-log rows plus the pool's
    offset, proxy-gold correlation and proxy SD, provenance extras)."""
    model = model.to("cpu")
    t1 = time.perf_counter()
    raw = score(model, pool["tokens"], pool["eos"]).numpy()
    offset = float(raw.mean())
    proxy = raw - offset  # recentred: the base sampler scores 0
    corr = float(np.corrcoef(proxy, gold)[0, 1])
    print(
        f"scored {len(raw)} pool samples in {time.perf_counter() - t1:.1f} s; "
        f"proxy-gold correlation {corr:.3f}"
    )
    last = rows[-1]["step"]
    rows = rows + [
        {"step": last, "measure": "recentre_offset", "value": offset},
        {"step": last, "measure": "pool_proxy_gold_corr", "value": corr},
        {"step": last, "measure": "pool_proxy_sd", "value": float(proxy.std())},
    ]
    return proxy, rows, {"n_params": n_params(cfg), "rm_config": cfg.to_dict()}


def _bon_rows(curves: dict[str, np.ndarray], ns) -> list[dict]:
    """bon.parquet's rows: one per measure, prompt and n (curves: measure -> [P, len(ns)])."""
    d = d_of_n(ns)
    return [
        {"n": n, "d": float(d[j]), "prompt": p, "measure": measure, "value": float(arr[p, j])}
        for measure, arr in curves.items()
        for p in range(arr.shape[0])
        for j, n in enumerate(ns)
    ]


@dataclass(frozen=True)
class RunFiles:
    """Where one run's outputs go (scores: ensemble members only)."""

    log: Path
    bon: Path
    provenance: Path
    scores: Path | None = None

    @classmethod
    def each(cls, logs, bons, provenances, scores) -> list[RunFiles]:
        """Per run, from the lists of a rule's outputs."""
        return [cls(*paths) for paths in zip(logs, bons, provenances, scores, strict=True)]


def _write_run(run, proxy, rows, extra, pool, gold, analysis, files: RunFiles, info: dict):
    """Best-of-n on the pool under `proxy`, then the run's files; `info` goes to provenance."""
    rows = rows + [{"step": 0, "measure": "n_params", "value": float(extra["n_params"])}]
    ns = n_grid(analysis["n_max"], analysis["per_octave"])
    curves = bon_curves(proxy, gold, pool["prompt_id"], ns)
    pd.DataFrame(_bon_rows(curves, ns)).to_parquet(files.bon, index=False)
    if files.scores is not None:
        save_scores(proxy, files.scores, run)
    pd.DataFrame(rows, columns=["step", "measure", "value"]).to_parquet(files.log, index=False)
    mean_gold = curves["gold"].mean(0)
    print("gold by n:", " ".join(f"{n}:{g:.2f}" for n, g in zip(ns, mean_gold, strict=True)))
    write_json(provenance(run, **info, **extra), files.provenance)


def _load_pool(pool_path) -> tuple[dict, np.ndarray]:
    """The pool and its gold recentred so that the base sampler scores 0."""
    pool = load_pool(pool_path)
    return pool, pool["gold"] - pool["gold"].mean()


def run_experiment(
    run: dict,
    env_dict: dict,
    analysis: dict,
    pairs_path,
    pool_path,
    run_dir,
    out_log,
    out_bon,
    out_provenance,
    threads: int = 1,
    out_scores=None,
) -> None:
    """Train one proxy RM on the pairs at `pairs_path` (or take gold itself for the oracle, which
    reads no pairs), then best-of-n on the pool.

    Writes train_log.parquet [step, measure, value], bon.parquet [n, d, prompt, measure, value]
    with measure gold / proxy (both recentred so the base sampler scores 0), provenance.json, and
    (out_scores, for ensemble members) the recentred proxy of every pool sample.
    """
    check_run(run, run_dir, fallback="reward")  # before any file is written
    device = resolve_device(run["device"])
    pool, gold = _load_pool(pool_path)
    t0 = time.perf_counter()
    if run["oracle"]:
        proxy, rows, extra = gold.copy(), [], {"n_params": 0}
    else:
        cfg = rm_config(run, env_dict)
        model, rows = train_rm(run, cfg, load_pairs(pairs_path), Path(run_dir), device)
        proxy, rows, extra = _scored(model, cfg, rows, pool, gold)
    files = RunFiles(Path(out_log), Path(out_bon), Path(out_provenance), out_scores)
    info = {"device": device, "threads": threads, "seconds": time.perf_counter() - t0}
    _write_run(run, proxy, rows, extra, pool, gold, analysis, files, info)


def run_group(
    runs: list[dict],
    env_dict: dict,
    analysis: dict,
    pairs_paths: list,
    pool_path,
    group_dir,
    run_dirs,
    files: list[RunFiles],
    threads: int = 1,
) -> None:
    """Runs that differ only in their seeds (a sweep cell's seeds, each on its own pairs; an
    ensemble's members, on one pairs file) trained together (`alignlab.preference.stacked`:
    each run's step is the step it takes alone); then each scores the pool and gets the files
    `run_experiment` writes (files[k].scores: its pool scores, for ensemble members)."""
    for run, run_dir in zip(runs, run_dirs, strict=True):  # before any file is written
        check_run(run, run_dir, fallback="reward")
    device = resolve_device(runs[0]["device"])
    pool, gold = _load_pool(pool_path)
    cfg = rm_config(runs[0], env_dict)
    loaded = {str(path): load_pairs(path) for path in dict.fromkeys(map(str, pairs_paths))}
    pairs = [loaded[str(path)] for path in pairs_paths]
    t0 = time.perf_counter()
    trained = train_stacked_rms(
        runs, cfg, pairs, Path(group_dir), [Path(d) for d in run_dirs], device
    )
    for run, (model, rows), own in zip(runs, trained, files, strict=True):
        proxy, rows, extra = _scored(model, cfg, rows, pool, gold)
        info = {"device": device, "threads": threads, "trained_together": len(runs)}
        info["seconds"] = time.perf_counter() - t0  # the group's training and scoring so far
        _write_run(run, proxy, rows, extra, pool, gold, analysis, own, info)
