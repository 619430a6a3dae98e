"""Bradley-Terry training of a reward model on preference pairs, as TRL's RewardTrainer does it.

Loss -logsigmoid(r_chosen - r_rejected). Metrics as TRL logs them, on the training batches
(running mean since the last evaluation) and on the held-out pairs (the last `heldout_frac` of
them): accuracy (strict r_chosen > r_rejected), margin (mean r_chosen - r_rejected), mean / min /
max reward over chosen and rejected. Checkpoints (safetensors) at log-spaced evaluation steps.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from alignlab.checkpoints import save_weights, step_path
from alignlab.preference.env import EnvConfig
from alignlab.preference.model import RewardModel, RMConfig, init_params, n_params
from alignlab.repair import start_afresh


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
