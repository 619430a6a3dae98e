"""Training on modular arithmetic, with checkpoints on a schedule and exact resume.

The loop is short on purpose: build or resume state, then step; at every scheduled step evaluate,
save weights (safetensors, atomic, checksummed) and the resume state for that step. A killed or
damaged run, rerun, continues from its last verified resume state (`alignlab.repair`) and
reaches bit-identical results (same threads, same compile setting): full-batch AdamW has no
randomness after initialisation, and minibatches (Power et al.'s setup, `batch_size`) are a pure
function of (seed, step), so there is no sampler state to lose. The model is the fast one-layer
model where it applies, else the general decoder (`alignlab.models.build_model`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from alignlab import checkpoints as ckpt
from alignlab.data import ModularDataset
from alignlab.models import ModelConfig, build_model, final_position_loss, init_params, param_shapes
from alignlab.provenance import code_version, config_hash, provenance, write_json
from alignlab.repair import trusted_resume
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


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.AdamW:
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
    return torch.optim.AdamW(groups, betas=tc.betas)


def set_warmup_lr(optimizer: torch.optim.Optimizer, step: int, warmup_steps: int) -> None:
    """Linear warm-up as in the released code: lr * min(step / warmup, 1)."""
    factor = min(step / warmup_steps, 1.0) if warmup_steps > 0 else 1.0
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def make_train_step(model, optimizer, a, b, c, compile: bool = False):
    """`step(idx=None)`: one AdamW step on (a, b) -> c, full batch or the examples `idx`;
    returns the (float64) loss tensor."""

    def loss_fn(a, b, c):
        return final_position_loss(model(a, b), c)

    loss_fn = torch.compile(loss_fn) if compile else loss_fn

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


def load_optimizer_state(optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    """Inverse of `optimizer_state_tensors`."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


@dataclass
class _State:
    model: torch.nn.Module
    optimizer: torch.optim.AdamW
    step: int
    log: list[dict]
    early_stop_since: int | None
    finished: bool = False  # reached the last step or stopped early: a rerun trains no further


def _fresh_state(model_cfg, tc, device) -> _State:
    model = build_model(model_cfg, init_params(model_cfg, tc.seed)).to(device)
    return _State(model, make_optimizer(model, tc), 0, [], None)


def _resume_or_start(run_dir: Path, fingerprint: str, model_cfg, tc, device) -> _State:
    """Resume from the resume state if it belongs to this exact run and it and the checkpoints
    it lists verify; else start afresh (`alignlab.repair` cleans up what it cannot trust)."""
    state = _fresh_state(model_cfg, tc, device)
    resume = trusted_resume(run_dir, fingerprint)
    if resume is not None:
        tensors, step, extra = resume
        params = {k[len("param.") :]: v for k, v in tensors.items() if k.startswith("param.")}
        state.model.load_state_dict(params)
        load_optimizer_state(state.optimizer, tensors, extra["param_groups"])
        state.step, state.log = step, extra["log"]
        state.early_stop_since = extra["early_stop_since"]
        state.finished = extra["finished"]
    return state


def _save_resume(run_dir: Path, state: _State, fingerprint: str) -> None:
    tensors, groups = optimizer_state_tensors(state.optimizer)
    # No torch RNG state: training never draws from it after initialisation (which has its own
    # generator; minibatches are a function of seed and step), and it would make files differ.
    tensors.update({f"param.{k}": v for k, v in state.model.params().items()})
    extra = {
        "fingerprint": fingerprint,
        "param_groups": groups,
        "log": state.log,
        "early_stop_since": state.early_stop_since,
        "finished": state.finished,
    }
    ckpt.save_resume(run_dir / "resume.safetensors", tensors, state.step, extra)


def _record_checkpoint(state: _State, dataset, device, run_dir, model_cfg, tc, fingerprint) -> None:
    """Evaluate, save weights and resume state at this step; decide whether training is done."""
    metrics = evaluate(state.model, dataset, device)
    if not np.isfinite(metrics["train_loss"]):
        raise TrainingDiverged(
            f"{run_dir.name}: train loss is {metrics['train_loss']} at step {state.step} "
            f"(lr {tc.lr}, weight_decay {tc.weight_decay}); lower the learning rate"
        )
    state.log.append({"step": state.step, **metrics})
    path = ckpt.step_path(run_dir / "checkpoints", state.step)
    ckpt.save_weights(state.model.params(), path, state.step, model_cfg.to_dict())
    if tc.early_stop_patience is not None:
        if metrics["test_acc"] < tc.early_stop_acc:
            state.early_stop_since = None
        elif state.early_stop_since is None:
            state.early_stop_since = state.step
    generalized = (
        state.early_stop_since is not None
        and state.step - state.early_stop_since >= tc.early_stop_patience
    )
    if generalized and state.step < tc.steps:
        tqdm.write(f"{run_dir.name}: generalized; early stop at step {state.step}")
    state.finished = generalized or state.step >= tc.steps
    _save_resume(run_dir, state, fingerprint)


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
    schedule = set(checkpoint_schedule(tc))
    tqdm.write(f"{run_dir.name}: {storage_estimate(model_cfg, len(schedule))}")

    state = _resume_or_start(run_dir, fingerprint, model_cfg, tc, device)
    a, b, c = (x.to(device) for x in dataset.split(True))
    train_step = make_train_step(state.model, state.optimizer, a, b, c, compile=tc.compile)
    batch_size = effective_batch_size(tc, len(c))
    started, start_step = time.perf_counter(), state.step
    with tqdm(total=tc.steps, initial=state.step, desc=run_dir.name, mininterval=2) as bar:
        while not state.finished:
            if state.step in schedule and (not state.log or state.log[-1]["step"] != state.step):
                _record_checkpoint(state, dataset, device, run_dir, model_cfg, tc, fingerprint)
                bar.set_postfix(test_acc=f"{state.log[-1]['test_acc']:.3f}", refresh=False)
                continue
            set_warmup_lr(state.optimizer, state.step, tc.warmup_steps)
            if batch_size is None:
                train_step()
            else:
                train_step(minibatch(state.step, len(c), batch_size, tc.seed).to(device))
            state.step += 1
            bar.update()
    elapsed = time.perf_counter() - started
    log = pd.DataFrame(state.log)
    log.to_parquet(run_dir / "train_log.parquet", index=False)
    timing = {
        "wall_s": elapsed,
        "steps_run": state.step - start_step,
        "ms_per_step": 1000 * elapsed / max(1, state.step - start_step),
    }
    write_json(
        provenance(run_config, device, threads, compile=tc.compile, timing=timing),
        run_dir / "provenance.json",
    )
    return log
