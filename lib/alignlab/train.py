"""Training on modular arithmetic, with checkpoints on a schedule and exact resume.

The loop is `alignlab.loop`'s: build or resume state, then step; at every scheduled step evaluate,
save weights (safetensors, atomic, checksummed) and the resume state for that step. A killed or
damaged run, rerun, continues from its last verified resume state (`alignlab.repair`) and
reaches bit-identical results (same threads, same compile setting): full-batch AdamW has no
randomness after initialisation, and minibatches (Power et al.'s setup, `batch_size`) are a pure
function of (seed, step), so there is no sampler state to lose. The model is the fast one-layer
model where it applies, else the general decoder (`alignlab.models.build_model`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from alignlab import optim
from alignlab.data import ModularDataset
from alignlab.loop import run_loop, write_outputs
from alignlab.models import ModelConfig, build_model, final_position_loss, init_params, param_shapes
from alignlab.provenance import code_version, config_hash, provenance
from alignlab.runtime import configure_torch, resolve_device


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 10
    # W_E's own optimiser settings (Liu et al. train embeddings at lr 1e-3, wd 0); None = same.
    embed_lr: float | None = None
    embed_weight_decay: float | None = None
    checkpoint_spacing: str = (
        "linear"  # "linear": every `checkpoint_every`; "log": `checkpoint_count`
    )
    checkpoint_every: int = 100
    checkpoint_count: int = 100
    seed: int = 0
    compile: bool = False
    device: str = "auto"
    # Stop once test accuracy has held >= early_stop_acc for early_stop_patience steps (None: off).
    early_stop_patience: int | None = None
    early_stop_acc: float = 0.99
    # None: full batch. An int: Power et al.'s minibatches of min(batch_size, half the training
    # set), a fresh permutation every epoch (see `minibatch`); `steps` then counts updates.
    batch_size: int | None = None


def effective_batch_size(tc: TrainConfig, n_train: int) -> int | None:
    """Power et al.'s min(batch_size, half the training set); None for full batch."""
    if tc.batch_size is None:
        return None
    return max(1, min(tc.batch_size, n_train // 2))


@lru_cache(maxsize=2)
def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, 7_919, epoch]).permutation(n)


def minibatch(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Example indices of minibatch `step`: epochs of a permutation seeded by (seed, epoch).

    A pure function of its arguments, so a resumed run draws exactly the batches it would have;
    each epoch covers n // batch_size batches (the remainder sits out that epoch).
    """
    per_epoch = n // batch_size
    epoch, i = divmod(step, per_epoch)
    return torch.from_numpy(_epoch_order(n, seed, epoch)[i * batch_size : (i + 1) * batch_size])


def checkpoint_schedule(tc: TrainConfig) -> list[int]:
    """Steps at which weights are saved; always includes step 0 and the last step."""
    if tc.checkpoint_spacing == "linear":
        steps = set(range(0, tc.steps + 1, tc.checkpoint_every))
    elif tc.checkpoint_spacing == "log":
        steps = set(np.unique(np.round(np.geomspace(1, tc.steps, tc.checkpoint_count))).astype(int))
    else:
        raise ValueError(f"checkpoint_spacing {tc.checkpoint_spacing!r} is not 'linear' or 'log'")
    return sorted(steps | {0, tc.steps})


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> optim.Adam:
    embed = [model.embed.W_E]
    rest = [p for name, p in model.named_parameters() if name != "embed.W_E"]
    groups = [
        {"params": rest, "lr": tc.lr, "weight_decay": tc.weight_decay, "base_lr": tc.lr},
        {
            "params": embed,
            "lr": tc.lr if tc.embed_lr is None else tc.embed_lr,
            "weight_decay": tc.weight_decay
            if tc.embed_weight_decay is None
            else tc.embed_weight_decay,
        },
    ]
    groups[1]["base_lr"] = groups[1]["lr"]
    return optim.AdamW(groups, betas=tc.betas)


def set_warmup_lr(optimizer: optim.Adam, step: int, warmup_steps: int) -> None:
    """Linear warm-up as in the released code: lr * min(step / warmup, 1)."""
    factor = min(step / warmup_steps, 1.0) if warmup_steps > 0 else 1.0
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def make_train_step(model, optimizer, a, b, c, compile: bool = False):
    """`step(idx=None)`: one AdamW step on (a, b) -> c, full batch or the examples `idx`;
    returns the (float64) loss tensor."""

    def loss_fn(a, b, c):
        return final_position_loss(model(a, b), c)

    if compile:  # the compiler fuses the plain forward's element-wise work itself
        loss_fn = torch.compile(loss_fn)
    elif hasattr(model, "loss"):  # the fast model's chunked forward-and-backward
        loss_fn = model.loss

    def step(idx: torch.Tensor | None = None):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(a, b, c) if idx is None else loss_fn(a[idx], b[idx], c[idx])
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


@torch.no_grad()
def evaluate(model, dataset: ModularDataset, device: torch.device) -> dict[str, float]:
    out = {}
    for split, is_train in (("train", True), ("test", False)):
        a, b, c = (x.to(device) for x in dataset.split(is_train))
        logits = model(a, b)
        out[f"{split}_loss"] = final_position_loss(logits, c).item()
        out[f"{split}_acc"] = (logits.argmax(-1) == c).double().mean().item()
    return out


def optimizer_state_tensors(optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """Optimizer moments as named tensors (for safetensors) and its param groups (JSON-able)."""
    state = optimizer.state_dict()
    tensors = {
        f"optim.{idx}.{key}": value.detach().cpu().reshape(value.shape)
        for idx, entry in state["state"].items()
        for key, value in entry.items()
    }
    return tensors, state["param_groups"]


def training_state(params: dict[str, torch.Tensor], optimizer) -> dict[str, torch.Tensor]:
    """The tensors every trainer's resume state holds: the parameters as "param.<name>" and the
    optimizer's moments (its param groups go in the JSON part: `optimizer_state_tensors`)."""
    tensors, _ = optimizer_state_tensors(optimizer)
    return tensors | {f"param.{name}": value for name, value in params.items()}


def load_training_state(model, optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    """Inverse of `training_state`: the parameters into `model`, the moments into `optimizer`."""
    params = {k.removeprefix("param."): v for k, v in tensors.items() if k.startswith("param.")}
    model.load_state_dict(params)
    load_optimizer_state(optimizer, tensors, groups)


def load_optimizer_state(optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    """Inverse of `optimizer_state_tensors`."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


class ModularTrainer:
    """`alignlab.loop.Trainer` for modular arithmetic: AdamW with warm-up, full batch or
    minibatches that are a function of (seed, step); early stop once generalized."""

    def __init__(self, model_cfg: ModelConfig, tc: TrainConfig, dataset, device, name: str):
        self.tc, self.dataset, self.device, self.name = tc, dataset, device, name
        self.model_config = model_cfg.to_dict()
        self.model = build_model(model_cfg, init_params(model_cfg, tc.seed)).to(device)
        self.optimizer = make_optimizer(self.model, tc)
        self.early_stop_since: int | None = None
        a, b, c = (x.to(device) for x in dataset.split(True))
        self.n_train = len(c)
        self.train_step = make_train_step(self.model, self.optimizer, a, b, c, tc.compile)
        self.batch_size = effective_batch_size(tc, len(c))

    def step(self, step: int) -> None:
        set_warmup_lr(self.optimizer, step, self.tc.warmup_steps)
        if self.batch_size is None:
            self.train_step()
        else:
            idx = minibatch(step, self.n_train, self.batch_size, self.tc.seed)
            self.train_step(idx.to(self.device))

    def evaluate(self, step: int) -> dict[str, float]:
        metrics = evaluate(self.model, self.dataset, self.device)
        if not np.isfinite(metrics["train_loss"]):
            raise TrainingDiverged(
                f"{self.name}: train loss is {metrics['train_loss']} at step {step} "
                f"(lr {self.tc.lr}, weight_decay {self.tc.weight_decay}); lower the learning rate"
            )
        return metrics

    def weights(self) -> dict[str, torch.Tensor]:
        return self.model.params()

    def stop_early(self, step: int, log: list[dict]) -> bool:
        if self.tc.early_stop_patience is None:
            return False
        if log[-1]["test_acc"] < self.tc.early_stop_acc:
            self.early_stop_since = None
        elif self.early_stop_since is None:
            self.early_stop_since = step
        since = self.early_stop_since
        return since is not None and step - since >= self.tc.early_stop_patience

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        # No torch RNG state: training never draws from it after initialisation (which has its
        # own generator; minibatches are a function of seed and step).
        return training_state(self.model.params(), self.optimizer)

    def resume_extra(self) -> dict:
        _, groups = optimizer_state_tensors(self.optimizer)
        return {"param_groups": groups, "early_stop_since": self.early_stop_since}

    def load(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        load_training_state(self.model, self.optimizer, tensors, extra["param_groups"])
        self.early_stop_since = extra["early_stop_since"]


def storage_estimate(model_cfg: ModelConfig, n_checkpoints: int) -> str:
    megabytes = 4e-6 * sum(int(np.prod(shape)) for shape in param_shapes(model_cfg).values())
    return (
        f"{n_checkpoints} checkpoints x {megabytes:.2f} MB = {n_checkpoints * megabytes:.0f} MB"
        " (plus one resume state)"
    )


def train(
    model_cfg: ModelConfig,
    tc: TrainConfig,
    dataset: ModularDataset,
    run_dir: Path,
    threads: int = 1,
    run_config: dict | None = None,
) -> pd.DataFrame:
    """Train one run into `run_dir`; returns the per-checkpoint log (also train_log.parquet)."""
    configure_torch(threads)
    device = resolve_device(tc.device)
    run_dir = Path(run_dir)
    run_config = run_config or {"model": model_cfg.to_dict(), "train": asdict(tc)}
    # Resume only into the same config and training code (not, e.g., edited figure code).
    fingerprint = config_hash({"run": run_config, "code": code_version(__name__)})
    schedule = checkpoint_schedule(tc)
    tqdm.write(f"{run_dir.name}: {storage_estimate(model_cfg, len(schedule))}")
    trainer = ModularTrainer(model_cfg, tc, dataset, device, run_dir.name)
    progress = run_loop(trainer, run_dir, fingerprint, schedule, tc.steps, bar_metric="test_acc")
    log = pd.DataFrame(progress.log)
    prov = provenance(run_config, device, threads, compile=tc.compile, timing=progress.timing())
    write_outputs(run_dir, log, prov)
    return log
