"""Train a proxy reward model on gold-labelled pairs, TRL style, and score the best-of-n pool.

Loss -logsigmoid(r_chosen - r_rejected) (TRL's RewardTrainer). Metrics as TRL logs them, on the
training batches (running mean since the last evaluation) and on the 10% held-out pairs:
accuracy (strict r_chosen > r_rejected), margin (mean r_chosen - r_rejected), mean / min / max
reward over chosen and rejected. After training the proxy is recentred so that the base sampler
(the pool, which is base samples) scores 0 on average; gold is recentred the same way.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from alignlab.checkpoints import atomic_save, save_weights, step_path
from alignlab.integrity import read_verified
from alignlab.provenance import provenance, write_json
from alignlab.repair import start_afresh
from alignlab.reward.bon import bon_curves, d_of_n, n_grid
from alignlab.reward.env import Env, EnvConfig, make_pairs, make_pool
from alignlab.reward.model import RewardModel, RMConfig, init_params, n_params, score
from alignlab.runtime import resolve_device

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


# ----- the reward model ----------------------------------------------------------------------
def rm_config(run: dict, env_dict: dict) -> RMConfig:
    env = EnvConfig.from_dict(env_dict)
    return RMConfig(
        d_vocab=env.d_vocab,
        n_ctx=env.n_ctx,
        d_model=run["d_model"],
        n_layers=run["n_layers"],
        n_heads=run["n_heads"],
        d_mlp=run["mlp_ratio"] * run["d_model"],
        normalization=run["normalization"],
    )


def pair_metrics(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> dict[str, float]:
    """TRL's reward metrics: accuracy (strict >), margin, mean / min / max reward, and the loss."""
    both = torch.cat([r_chosen, r_rejected])
    return {
        "loss": float(-F.logsigmoid(r_chosen - r_rejected).mean()),
        "accuracy": float((r_chosen > r_rejected).float().mean()),
        "margin": float((r_chosen - r_rejected).mean()),
        "mean_reward": float(both.mean()),
        "min_reward": float(both.min()),
        "max_reward": float(both.max()),
    }


def split_pairs(pairs: dict[str, np.ndarray], n_pairs: int, heldout_frac: float):
    """The first n_pairs (nested across data sizes); the last heldout_frac of them held out."""
    n_test = max(1, int(round(n_pairs * heldout_frac)))
    take = {
        k: torch.from_numpy(v[:n_pairs].astype(np.int64 if v.dtype == np.uint8 else v.dtype))
        for k, v in pairs.items()
    }
    train = {k: v[: n_pairs - n_test] for k, v in take.items()}
    test = {k: v[n_pairs - n_test :] for k, v in take.items()}
    return train, test


def eval_steps(steps: int, n_evals: int) -> list[int]:
    """Log-spaced evaluation (= checkpoint) steps from 0 to `steps`."""
    grid = np.unique(np.round(np.geomspace(1, steps, max(2, n_evals - 1))).astype(int))
    return sorted({0, *grid.tolist(), steps})


def train_rm(run: dict, cfg: RMConfig, pairs, run_dir: Path, device: torch.device):
    """Train; returns (model, tidy log rows). Checkpoints (safetensors) at the evaluation steps."""
    train, test = split_pairs(pairs, run["n_pairs"], run["heldout_frac"])
    n_train = len(train["chosen_eos"])
    steps = max(run["min_steps"], int(math.ceil(run["epochs"] * n_train / run["batch_size"])))
    evals = set(eval_steps(steps, run["n_evals"]))
    print(
        f"RM {n_params(cfg)} params, {n_train} train / {len(test['chosen_eos'])} held-out "
        f"pairs, {steps} steps of batch {run['batch_size']}"
    )
    start_afresh(run_dir)  # no resume: the checkpoints of an earlier run must not mix in
    torch.manual_seed(run["seed"])
    model = RewardModel(cfg, init_params(cfg, run["seed"])).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=run["lr"], weight_decay=run["weight_decay"])
    gen = torch.Generator().manual_seed(run["seed"])
    rows, running = [], []
    order = torch.randperm(n_train, generator=gen)
    cursor = 0
    t0 = time.perf_counter()
    for step in range(steps + 1):
        if step in evals:
            model.eval()
            with torch.no_grad():
                rc = model(test["chosen"].to(device), test["chosen_eos"].to(device))
                rr = model(test["rejected"].to(device), test["rejected_eos"].to(device))
            for name, value in pair_metrics(rc, rr).items():
                rows.append({"step": step, "measure": f"eval_{name}", "value": value})
            if running:
                for name in running[0]:
                    value = float(np.mean([r[name] for r in running]))
                    rows.append({"step": step, "measure": f"train_{name}", "value": value})
                running = []
            save_weights(
                model.params(), step_path(run_dir / "checkpoints", step), step, cfg.to_dict()
            )
            model.train()
        if step == steps:
            break
        if cursor + run["batch_size"] > n_train:
            order, cursor = torch.randperm(n_train, generator=gen), 0
        idx = order[cursor : cursor + run["batch_size"]]
        cursor += run["batch_size"]
        both = torch.cat([train["chosen"][idx], train["rejected"][idx]]).to(device)
        eos = torch.cat([train["chosen_eos"][idx], train["rejected_eos"][idx]]).to(device)
        r = model(both, eos)
        rc, rr = r[: len(idx)], r[len(idx) :]
        loss = -F.logsigmoid(rc - rr).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training diverged: loss {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(pair_metrics(rc.detach(), rr.detach()))
    print(
        f"trained in {time.perf_counter() - t0:.1f} s; held-out accuracy "
        f"{[r['value'] for r in rows if r['measure'] == 'eval_accuracy'][-1]:.3f}"
    )
    return model, rows


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
    run_dir = Path(run_dir)
    device = resolve_device(run["device"])
    pool = load_pool(pool_path)
    gold = pool["gold"] - pool["gold"].mean()
    t0 = time.perf_counter()
    if run["oracle"]:
        proxy, rows = gold.copy(), []
        extra = {"n_params": 0}
    else:
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
        extra = {"n_params": n_params(cfg), "rm_config": cfg.to_dict()}
    rows.append({"step": 0, "measure": "n_params", "value": float(extra["n_params"])})
    ns = n_grid(analysis["n_max"], analysis["per_octave"])
    curves = bon_curves(proxy, gold, pool["prompt_id"], ns)
    d = d_of_n(ns)
    bon_rows = [
        {"n": n, "d": float(d[j]), "prompt": p, "measure": measure, "value": float(arr[p, j])}
        for measure, arr in curves.items()
        for p in range(arr.shape[0])
        for j, n in enumerate(ns)
    ]
    pd.DataFrame(bon_rows).to_parquet(out_bon, index=False)
    if out_scores is not None:
        save_scores(proxy, out_scores, run)
    pd.DataFrame(rows, columns=["step", "measure", "value"]).to_parquet(out_log, index=False)
    mean_gold = curves["gold"].mean(0)
    print("gold by n:", " ".join(f"{n}:{g:.2f}" for n, g in zip(ns, mean_gold, strict=True)))
    write_json(
        provenance(run, device, threads, seconds=time.perf_counter() - t0, **extra), out_provenance
    )
