"""Bradley-Terry training of a reward model on preference pairs, as TRL's RewardTrainer does it.

Loss -logsigmoid(r_chosen - r_rejected). Metrics as TRL logs them, on the training batches
(running mean since the last evaluation) and on the held-out pairs (the last `heldout_frac` of
them): accuracy (strict r_chosen > r_rejected), margin (mean r_chosen - r_rejected), mean / min /
max reward over chosen and rejected. Checkpoints (safetensors) at log-spaced evaluation steps, on
`alignlab.loop`: a resume state at each, so a killed run resumes exactly.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from alignlab import optim
from alignlab.loop import run_loop
from alignlab.preference.env import EnvConfig
from alignlab.preference.model import RewardModel, RMConfig, init_params, n_params
from alignlab.provenance import code_version, config_hash
from alignlab.train import load_training_state, optimizer_state_tensors, training_state


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


class BatchOrder:
    """A run's batches: a fresh permutation of its training pairs each epoch, drawn from the
    run's own generator (seeded by the run's seed), so the batches a run sees do not depend on
    what else trains beside it."""

    def __init__(self, n_train: int, seed: int):
        self.n_train = n_train
        self.gen = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n_train, generator=self.gen)
        self.cursor = 0

    def next(self, size: int) -> torch.Tensor:
        """The indices of the next batch of `size` pairs."""
        if self.cursor + size > self.n_train:
            self.order, self.cursor = torch.randperm(self.n_train, generator=self.gen), 0
        idx = self.order[self.cursor : self.cursor + size]
        self.cursor += size
        return idx

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        return {f"{prefix}batch_rng": self.gen.get_state(), f"{prefix}batch_order": self.order}

    def load(self, tensors: dict[str, torch.Tensor], cursor: int, prefix: str = "") -> None:
        self.gen.set_state(tensors[f"{prefix}batch_rng"])
        self.order, self.cursor = tensors[f"{prefix}batch_order"], cursor


def pair_batch(train: dict[str, torch.Tensor], idx: torch.Tensor):
    """(tokens [2 * batch, seq], eos [2 * batch]) of the pairs `idx`: chosen rows, then rejected."""
    both = torch.cat([train["chosen"][idx], train["rejected"][idx]])
    eos = torch.cat([train["chosen_eos"][idx], train["rejected_eos"][idx]])
    return both, eos


@torch.no_grad()
def evaluate_rm(model: RewardModel, test, running: list[dict], device) -> dict[str, float]:
    """The log entry at an evaluation: TRL's metrics on the held-out pairs (`eval_*`) and the
    mean of the training batches' metrics since the last evaluation (`train_*`)."""
    model.eval()
    test = {k: v.to(device) for k, v in test.items()}
    rc = model(test["chosen"], test["chosen_eos"])
    rr = model(test["rejected"], test["rejected_eos"])
    model.train()
    entry = {f"eval_{name}": value for name, value in pair_metrics(rc, rr).items()}
    for name in running[0] if running else []:
        entry[f"train_{name}"] = float(np.mean([r[name] for r in running]))
    return entry


class RMTrainer:
    """`alignlab.loop.Trainer` for a reward model: AdamW on batches of a `BatchOrder`;
    evaluation by `evaluate_rm`."""

    def __init__(self, run: dict, cfg: RMConfig, train, test, evals: set[int], device):
        self.run, self.train, self.test, self.evals, self.device = run, train, test, evals, device
        self.model_config = cfg.to_dict()
        self.model = RewardModel(cfg, init_params(cfg, run["seed"])).to(device)
        self.opt = optim.AdamW(
            self.model.parameters(), lr=run["lr"], weight_decay=run["weight_decay"]
        )
        self.batches = BatchOrder(len(train["chosen_eos"]), run["seed"])
        self.running: list[dict] = []  # training-batch metrics since the last evaluation

    def step(self, step: int) -> None:
        if step in self.evals:  # evaluated at this step: a new running mean starts
            self.running = []
        idx = self.batches.next(self.run["batch_size"])
        both, eos = pair_batch(self.train, idx)
        r = self.model(both.to(self.device), eos.to(self.device))
        rc, rr = r[: len(idx)], r[len(idx) :]
        loss = -F.logsigmoid(rc - rr).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training diverged: loss {loss.item()} at step {step}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.running.append(pair_metrics(rc.detach(), rr.detach()))

    def evaluate(self, step: int) -> dict[str, float]:
        return evaluate_rm(self.model, self.test, self.running, self.device)

    def weights(self) -> dict[str, torch.Tensor]:
        return self.model.params()

    def stop_early(self, step: int, log: list[dict]) -> bool:
        return False

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        return training_state(self.model.params(), self.opt) | self.batches.tensors()

    def resume_extra(self) -> dict:
        groups = optimizer_state_tensors(self.opt)[1]
        return {"param_groups": groups, "cursor": self.batches.cursor, "running": self.running}

    def load(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        load_training_state(self.model, self.opt, tensors, extra["param_groups"])
        self.batches.load(tensors, extra["cursor"])
        self.running = extra["running"]


def data_digest(*splits: dict[str, torch.Tensor]) -> str:
    """Short hash of the pairs a run trains and evaluates on (part of its fingerprint)."""
    digest = hashlib.sha256()
    for split in splits:
        for name in sorted(split):
            digest.update(name.encode() + split[name].contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def schedule(run: dict, n_train: int) -> tuple[int, list[int]]:
    """(steps, evaluation steps): `epochs` passes over the training pairs, at least
    `min_steps`, evaluated (and checkpointed) at `n_evals` log-spaced steps."""
    steps = max(run["min_steps"], int(math.ceil(run["epochs"] * n_train / run["batch_size"])))
    return steps, eval_steps(steps, run["n_evals"])


def log_rows(log: list[dict]) -> list[dict]:
    """The loop's log entries as tidy rows [step, measure, value]."""
    return [
        {"step": entry["step"], "measure": measure, "value": value}
        for entry in log
        for measure, value in entry.items()
        if measure != "step"
    ]


def train_rm(run: dict, cfg: RMConfig, pairs, run_dir: Path, device: torch.device):
    """Train (`RMTrainer` on `alignlab.loop`: checkpoints at the evaluation steps, a resume state
    at each, exact resume); returns (model, tidy log rows [step, measure, value])."""
    train, test = split_pairs(pairs, run["n_pairs"], run["heldout_frac"])
    n_train = len(train["chosen_eos"])
    steps, evals = schedule(run, n_train)
    print(
        f"RM {n_params(cfg)} params, {n_train} train / {len(test['chosen_eos'])} held-out "
        f"pairs, {steps} steps of batch {run['batch_size']}"
    )
    fingerprint = config_hash(
        {"run": run, "model": cfg.to_dict(), "data": data_digest(train, test),
         "device": str(device), "code": code_version(__name__)}
    )  # fmt: skip
    trainer = RMTrainer(run, cfg, train, test, set(evals), device)
    t0 = time.perf_counter()
    progress = run_loop(trainer, Path(run_dir), fingerprint, evals, steps)
    rows = log_rows(progress.log)
    print(
        f"trained in {time.perf_counter() - t0:.1f} s; held-out accuracy "
        f"{[r['value'] for r in rows if r['measure'] == 'eval_accuracy'][-1]:.3f}"
    )
    return trainer.model, rows
