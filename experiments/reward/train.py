"""The reward experiment's runs: its datasets (pairs, the best-of-n pool, ensemble members'
scores) and one run: a proxy reward model trained on gold-labelled pairs (TRL style,
`alignlab.preference.train`), then best-of-n on the pool.

After training the proxy is recentred so that the base sampler (the pool, which is base samples)
scores 0 on average; gold is recentred the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alignlab.checkpoints import atomic_save
from alignlab.config import check_run
from alignlab.integrity import read_verified
from alignlab.preference.env import Env, EnvConfig, make_pairs, make_pool
from alignlab.preference.model import n_params, score
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


# ----- one run -------------------------------------------------------------------------------
def _trained_proxy(
    run: dict, env_dict: dict, pairs_path, run_dir: Path, device, pool: dict, gold: np.ndarray
) -> tuple[np.ndarray, list[dict], dict]:
    """Train the proxy RM and score the pool: (recentred proxy, train-log rows with the pool's
    offset, proxy-gold correlation and proxy SD, provenance extras)."""
    cfg = rm_config(run, env_dict)
    model, rows = train_rm(run, cfg, load_pairs(pairs_path), run_dir, device)
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
    rows += [
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
    """Train one proxy RM (or take gold itself for the oracle), then best-of-n on the pool.

    Writes train_log.parquet [step, measure, value], bon.parquet [n, d, prompt, measure, value]
    with measure gold / proxy (both recentred so the base sampler scores 0), provenance.json, and
    (out_scores, for ensemble members) the recentred proxy of every pool sample.
    """
    check_run(run, run_dir, fallback="reward")  # before any file is written
    run_dir = Path(run_dir)
    device = resolve_device(run["device"])
    pool = load_pool(pool_path)
    gold = pool["gold"] - pool["gold"].mean()
    t0 = time.perf_counter()
    if run["oracle"]:
        proxy, rows = gold.copy(), []
        extra = {"n_params": 0}
    else:
        proxy, rows, extra = _trained_proxy(run, env_dict, pairs_path, run_dir, device, pool, gold)
    rows.append({"step": 0, "measure": "n_params", "value": float(extra["n_params"])})
    ns = n_grid(analysis["n_max"], analysis["per_octave"])
    curves = bon_curves(proxy, gold, pool["prompt_id"], ns)
    pd.DataFrame(_bon_rows(curves, ns)).to_parquet(out_bon, index=False)
    if out_scores is not None:
        save_scores(proxy, out_scores, run)
    pd.DataFrame(rows, columns=["step", "measure", "value"]).to_parquet(out_log, index=False)
    mean_gold = curves["gold"].mean(0)
    print("gold by n:", " ".join(f"{n}:{g:.2f}" for n, g in zip(ns, mean_gold, strict=True)))
    write_json(
        provenance(run, device, threads, seconds=time.perf_counter() - t0, **extra), out_provenance
    )
