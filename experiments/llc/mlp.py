"""devinterp's grokking example, as our own small model and loop: an MLP on (a + b) mod 53, a
shared embedding of width 12, one linear map per input position into 48 GELU units, an unbiased
readout; Adam (lr 5e-3, coupled L2 weight decay 2e-4) on random batches of 128 from 40% of the
pairs; safetensors checkpoints through `alignlab.checkpoints`, exact resume.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from alignlab import checkpoints as ckpt
from alignlab import optim
from alignlab.config import check_run, expand_runs, run_roles
from alignlab.data import ModularDataset, build_dataset, load_dataset, save_dataset
from alignlab.loop import run_loop, write_outputs
from alignlab.provenance import code_version, config_hash, provenance
from alignlab.runtime import configure_torch
from alignlab.train import (
    TrainingDiverged,
    load_training_state,
    optimizer_state_tensors,
    training_state,
)


@dataclass(frozen=True)
class MLPConfig:
    p: int = 53
    embed_dim: int = 12
    hidden: int = 48

    def to_dict(self) -> dict:
        return asdict(self)


class ModularMLP(nn.Module):
    """logits = W_2 GELU(L_l(E[a]) + L_r(E[b])): devinterp's grokking example model.

    Parameter names and initialisation (torch's nn.Embedding / nn.Linear defaults, drawn in this
    order after `torch.manual_seed(seed)`) are those of the example.
    """

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.p, cfg.embed_dim)
        self.linear1r = nn.Linear(cfg.embed_dim, cfg.hidden, bias=True)
        self.linear1l = nn.Linear(cfg.embed_dim, cfg.hidden, bias=True)
        self.linear2 = nn.Linear(cfg.hidden, cfg.p, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = self.linear1l(self.embedding(a)) + self.linear1r(self.embedding(b))
        return self.linear2(F.gelu(x))


def mlp_from_params(params: dict[str, torch.Tensor], cfg: dict) -> ModularMLP:
    model = ModularMLP(MLPConfig(**cfg))
    try:
        model.load_state_dict(params)
    except RuntimeError as err:
        raise ckpt.CheckpointError(f"checkpoint does not match the MLP {cfg}: {err}") from err
    return model


def mlp_schedule(steps: int, every: int, log_count: int = 0, log_start: int = 100) -> list[int]:
    """Checkpoint steps: every `every` steps, plus `log_count` log-spaced ones from `log_start`
    (the LLC rises within the first few hundred steps), always step 0 and the last."""
    found = set(range(0, steps + 1, every)) | {0, steps}
    if log_count > 0 and log_start < steps:
        found |= set(np.unique(np.round(np.geomspace(log_start, steps, log_count))).astype(int))
    return sorted(found)


_MLP_TRAIN_KEYS = ("seed", "steps", "lr", "weight_decay", "batch_size")


def _evaluate(model, dataset: ModularDataset) -> dict[str, float]:
    out = {}
    with torch.no_grad():
        for split, is_train in (("train", True), ("test", False)):
            a, b, c = dataset.split(is_train)
            logits = model(a, b)
            out[f"{split}_loss"] = F.cross_entropy(logits.double(), c).item()
            out[f"{split}_acc"] = (logits.argmax(-1) == c).double().mean().item()
    return out


class MLPTrainer:
    """`alignlab.loop.Trainer` for the example MLP: Adam with coupled L2, a random batch
    (without replacement) per step drawn from its own generator, which the resume state holds."""

    def __init__(self, run: dict, dataset: ModularDataset, name: str):
        self.run, self.dataset, self.name = run, dataset, name
        cfg = MLPConfig(p=run["p"], embed_dim=run["embed_dim"], hidden=run["hidden"])
        self.model_config = cfg.to_dict()
        torch.manual_seed(run["seed"])
        self.model = ModularMLP(cfg)
        self.optimizer = optim.Adam(
            self.model.parameters(), lr=run["lr"], weight_decay=run["weight_decay"]
        )
        self.batches = torch.Generator().manual_seed(run["seed"])
        self.a, self.b, self.c = dataset.split(True)
        self.batch = min(run["batch_size"], len(self.a))

    def step(self, step: int) -> None:
        if self.run["lr"] == 0:  # the frozen null: Adam moves a weight by lr x (finite), exactly 0
            return
        idx = torch.randperm(len(self.a), generator=self.batches)[: self.batch]
        loss = F.cross_entropy(self.model(self.a[idx], self.b[idx]), self.c[idx])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def evaluate(self, step: int) -> dict[str, float]:
        metrics = _evaluate(self.model, self.dataset)
        if not math.isfinite(metrics["train_loss"]):
            raise TrainingDiverged(
                f"{self.name}: train loss is {metrics['train_loss']} at step {step}"
            )
        return metrics

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def stop_early(self, step: int, log: list[dict]) -> bool:
        return False

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        tensors = training_state(self.weights(), self.optimizer)
        tensors["batch_rng"] = self.batches.get_state()
        return tensors

    def resume_extra(self) -> dict:
        return {"param_groups": optimizer_state_tensors(self.optimizer)[1]}

    def load(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        load_training_state(self.model, self.optimizer, tensors, extra["param_groups"])
        self.batches.set_state(tensors["batch_rng"])


def train_mlp(run: dict, dataset_path: Path, run_dir: Path, threads: int = 1) -> pd.DataFrame:
    """Train the example MLP (`MLPTrainer`) on `alignlab.loop`: checkpoints (safetensors,
    atomic) on `mlp_schedule`, a resume state at each one, exact resume."""
    check_run(run, run_dir, fallback="llc")  # before any file is written
    configure_torch(threads)
    run_dir = Path(run_dir)
    schedule = mlp_schedule(
        run["steps"],
        run["checkpoint_every"],
        run.get("checkpoint_log_count", 0),
        run.get("checkpoint_log_start", 100),
    )
    fingerprint = config_hash({"run": run, "code": code_version(__name__)})
    trainer = MLPTrainer(run, load_dataset(dataset_path), run_dir.name)
    progress = run_loop(trainer, run_dir, fingerprint, schedule, run["steps"])
    frame = pd.DataFrame(progress.log)
    write_outputs(run_dir, frame, provenance(run, torch.device("cpu"), threads))
    return frame


def make_dataset(spec: dict, path: Path) -> None:
    save_dataset(build_dataset(spec["p"], "add", spec["frac_train"], spec["data_seed"]), path)


def expand_mlp_runs(block: dict, roles: bool = False) -> dict:
    """The MLP runs this experiment trains, {run_id: run} (its transformer runs are grokking's);
    with `roles`, {run_id: role} instead."""
    expanded = (run_roles if roles else expand_runs)(block["mlp"])
    return {f"mlp-{rid}": value for rid, value in expanded.items()}


def dataset_id(run: dict) -> str:
    return f"add-p{run['p']}-frac{run['frac_train']}-seed{run['data_seed']}"
