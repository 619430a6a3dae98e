"""Train a group of same-shape runs as one vectorized model, on the shared loop (`alignlab.loop`).

The group is one `Trainer`: its state is the stacked parameters [R, ...], the vectorized AdamW's
moments and step counts, and which runs are still active; so it checkpoints, stops and resumes
exactly as a single run does (a killed group continues from its last verified resume state).
The loop runs in the group's own folder, where the checkpoints hold the stacked weights. Once the
group has finished, each run's files are written in the single-run layout (train log, weights
checkpoints by `alignlab.loop.split_stacked`, provenance) into the run's own folder, so
everything downstream reads a grouped run exactly as a run trained alone, and the stacked
checkpoints are removed (a rerun of a finished group whose checkpoints are gone trains it
afresh).

Early stop is per run, as in `alignlab.train`: once a run's test accuracy has held at or above
early_stop_acc for early_stop_patience steps it is frozen (masked) and its log ends there; the
group finishes when every run has stopped or the budget is spent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alignlab.config import check_run
from alignlab.data import ModularDataset, load_dataset
from alignlab.loop import run_loop, split_stacked, write_outputs
from alignlab.models import ModelConfig, init_params
from alignlab.modular import model_config, train_config
from alignlab.provenance import code_version, config_hash, provenance
from alignlab.runtime import configure_torch, resolve_device
from alignlab.train import TrainConfig, TrainingDiverged, checkpoint_schedule
from alignlab.vectorized import (
    RunHyper,
    VectorizedAdamW,
    check_group,
    per_run_loss,
    stack_params,
    vectorized_logits,
)


class GroupTrainer:
    """R runs of one shape as one `alignlab.loop.Trainer`. Log entries name each active run's
    metrics `<metric>/<r>`; `run_logs` turns the group's log back into one log per run."""

    def __init__(self, model_cfg: ModelConfig, tcs: Sequence[TrainConfig], dataset, device):
        check_group([model_cfg] * len(tcs), tcs)
        self.cfg, self.tc, n_runs = model_cfg, tcs[0], len(tcs)
        self.lrs_and_decays = [(tc.lr, tc.weight_decay) for tc in tcs]
        self.model_config = {**model_cfg.to_dict(), "stacked_runs": n_runs}
        stacked = stack_params([init_params(model_cfg, tc.seed) for tc in tcs])
        self.params = {n: v.to(device).requires_grad_(True) for n, v in stacked.items()}
        self.optimizer = VectorizedAdamW(
            self.params, RunHyper.from_configs(tcs, device), betas=self.tc.betas
        )
        self.splits = {
            name: tuple(x.to(device) for x in dataset.split(is_train))
            for name, is_train in (("train", True), ("test", False))
        }
        self.active = torch.ones(n_runs, dtype=torch.bool, device=device)
        self.since: list[int | None] = [None] * n_runs  # step since test acc >= early_stop_acc

    def step(self, step: int) -> None:
        warmup = self.tc.warmup_steps
        factor = min(step / warmup, 1.0) if warmup > 0 else 1.0
        a, b, c = self.splits["train"]
        self.optimizer.zero_grad()
        per_run_loss(vectorized_logits(self.cfg, self.params, a, b), c).sum().backward()
        self.optimizer.step(self.active, lr_factor=factor)

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        metrics = {}
        for name, (a, b, c) in self.splits.items():
            logits = vectorized_logits(self.cfg, self.params, a, b)
            metrics[f"{name}_loss"] = per_run_loss(logits, c).cpu().numpy()
            metrics[f"{name}_acc"] = (logits.argmax(-1) == c).double().mean(-1).cpu().numpy()
        entry = {}
        for r in np.flatnonzero(self.active.cpu().numpy()):
            if not math.isfinite(metrics["train_loss"][r]):
                lr, wd = self.lrs_and_decays[r]
                raise TrainingDiverged(
                    f"run {r}: train loss is {metrics['train_loss'][r]} at step {step} "
                    f"(lr {lr}, weight_decay {wd}); lower the learning rate"
                )
            entry |= {f"{key}/{r}": float(values[r]) for key, values in metrics.items()}
        return entry

    def stop_early(self, step: int, log: list[dict]) -> bool:
        """Freeze each run whose test accuracy has held long enough; True once none is left."""
        patience, threshold = self.tc.early_stop_patience, self.tc.early_stop_acc
        if patience is None:
            return False
        for r in np.flatnonzero(self.active.cpu().numpy()):
            if log[-1][f"test_acc/{r}"] < threshold:
                self.since[r] = None
            elif self.since[r] is None:
                self.since[r] = step
            if self.since[r] is not None and step - self.since[r] >= patience:
                self.active[r] = False
        return not bool(self.active.any())

    def weights(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().cpu().clone() for name, p in self.params.items()}

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        opt = self.optimizer
        tensors = {f"param.{n}": p for n, p in self.weights().items()}
        tensors |= {f"exp_avg.{n}": m.detach().cpu() for n, m in opt.exp_avg.items()}
        tensors |= {f"exp_avg_sq.{n}": v.detach().cpu() for n, v in opt.exp_avg_sq.items()}
        return tensors | {"step_count": opt.step_count.cpu(), "active": self.active.cpu()}

    def resume_extra(self) -> dict:
        return {"since": self.since}

    @torch.no_grad()
    def load(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        opt = self.optimizer
        for name, param in self.params.items():
            param.copy_(tensors[f"param.{name}"])
            opt.exp_avg[name].copy_(tensors[f"exp_avg.{name}"])
            opt.exp_avg_sq[name].copy_(tensors[f"exp_avg_sq.{name}"])
        opt.step_count.copy_(tensors["step_count"])
        self.active.copy_(tensors["active"])
        self.since = list(extra["since"])


def run_logs(log: list[dict], n_runs: int) -> list[pd.DataFrame]:
    """The group's log (entries with `<metric>/<r>` keys) as one log per run, each ending where
    that run stopped."""
    frames = []
    for r in range(n_runs):
        suffix = f"/{r}"
        rows = [
            {"step": entry["step"]}
            | {key[: -len(suffix)]: value for key, value in entry.items() if key.endswith(suffix)}
            for entry in log
            if f"train_loss{suffix}" in entry
        ]
        frames.append(pd.DataFrame(rows))
    return frames


def train_vectorized(
    model_cfg: ModelConfig,
    tcs: Sequence[TrainConfig],
    dataset: ModularDataset,
    group_dir: Path,
    run_dirs: Sequence[Path] | None = None,
    run_configs: Sequence[dict] | None = None,
    threads: int = 1,
    device: str | None = None,
) -> list[pd.DataFrame]:
    """Train R runs of one shape on one dataset together in `group_dir`; return each run's log.
    With `run_dirs`, each run also gets its train log, checkpoints and provenance there."""
    configure_torch(threads)
    dev = resolve_device(device or tcs[0].device)
    trainer = GroupTrainer(model_cfg, tcs, dataset, dev)
    identity = list(run_configs) if run_configs is not None else [asdict(tc) for tc in tcs]
    fingerprint = config_hash(
        {"model": model_cfg.to_dict(), "runs": identity, "code": code_version(__name__)}
    )
    schedule = checkpoint_schedule(tcs[0])
    progress = run_loop(trainer, Path(group_dir), fingerprint, schedule, tcs[0].steps)
    frames = run_logs(progress.log, len(tcs))
    if run_dirs is not None:
        split_stacked(group_dir, run_dirs, [set(f.step.astype(int)) for f in frames])
        timing = {**progress.timing(), "runs_together": len(tcs)}
        for r, run_dir in enumerate(run_dirs):
            config = identity[r] if run_configs is not None else {"seed": tcs[r].seed}
            info = provenance(config, dev, threads, compile=False, timing=timing, vectorized=True)
            write_outputs(Path(run_dir), frames[r], info)
    return frames


def train_group(
    runs: Sequence[dict],
    dataset_path: Path,
    group_dir: Path,
    run_dirs: Sequence[Path],
    threads: int,
) -> None:
    """Flat run configs (as `alignlab.modular.train_run` takes) of one shape and dataset, as one
    vectorized model trained in `group_dir`; outputs split per run into `run_dirs`."""
    for run, run_dir in zip(runs, run_dirs, strict=True):  # before any file is written
        check_run(run, run_dir, fallback="alignlab:modular_run")
    cfgs = {model_config(run) for run in runs}
    if len(cfgs) != 1:
        raise ValueError(f"runs trained together must share the model shape; got {cfgs}")
    train_vectorized(
        cfgs.pop(),
        [train_config(run) for run in runs],
        load_dataset(dataset_path),
        Path(group_dir),
        run_dirs=[Path(d) for d in run_dirs],
        run_configs=list(runs),
        threads=threads,
    )
