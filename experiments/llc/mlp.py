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
from tqdm import tqdm

from alignlab import checkpoints as ckpt
from alignlab.config import check_run, expand_runs, run_roles
from alignlab.data import ModularDataset, build_dataset, load_dataset, save_dataset
from alignlab.provenance import code_version, config_hash, provenance, write_json
from alignlab.repair import trusted_resume
from alignlab.runtime import configure_torch
from alignlab.train import TrainingDiverged, load_optimizer_state, optimizer_state_tensors


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


def train_mlp(run: dict, dataset_path: Path, run_dir: Path, threads: int = 1) -> pd.DataFrame:
    """Train the example MLP: Adam with coupled L2, a random batch (without replacement) per
    step; checkpoints (safetensors, atomic) on `mlp_schedule`; resume state at each one."""
    check_run(run, run_dir, fallback="llc")  # before any file is written
    configure_torch(threads)
    run_dir = Path(run_dir)
    dataset = load_dataset(dataset_path)
    cfg = MLPConfig(p=run["p"], embed_dim=run["embed_dim"], hidden=run["hidden"])
    schedule = mlp_schedule(
        run["steps"],
        run["checkpoint_every"],
        run.get("checkpoint_log_count", 0),
        run.get("checkpoint_log_start", 100),
    )
    fingerprint = config_hash({"run": run, "code": code_version(__name__)})
    torch.manual_seed(run["seed"])
    model = ModularMLP(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=run["lr"], weight_decay=run["weight_decay"])
    batches = torch.Generator().manual_seed(run["seed"])
    step, log = 0, []
    resume = run_dir / "resume.safetensors"
    trusted = trusted_resume(run_dir, fingerprint)  # verified, or None after cleaning up
    if trusted is not None:
        tensors, step, extra = trusted
        params = {k[len("param.") :]: v for k, v in tensors.items() if k.startswith("param.")}
        model.load_state_dict(params)
        load_optimizer_state(optimizer, tensors, extra["param_groups"])
        batches.set_state(tensors["batch_rng"])
        log = extra["log"]
    a, b, c = dataset.split(True)
    batch = min(run["batch_size"], len(a))
    with tqdm(total=run["steps"], initial=step, desc=run_dir.name, mininterval=2) as bar:
        while True:
            if step in schedule and (not log or log[-1]["step"] != step):
                metrics = _evaluate(model, dataset)
                if not math.isfinite(metrics["train_loss"]):
                    raise TrainingDiverged(
                        f"{run_dir.name}: train loss is {metrics['train_loss']} at step {step}"
                    )
                log.append({"step": step, **metrics})
                params = {k: v.detach().clone() for k, v in model.state_dict().items()}
                ckpt.save_weights(
                    params, ckpt.step_path(run_dir / "checkpoints", step), step, cfg.to_dict()
                )
                tensors, groups = optimizer_state_tensors(optimizer)
                tensors |= {f"param.{k}": v for k, v in params.items()}
                tensors["batch_rng"] = batches.get_state()
                extra = {"fingerprint": fingerprint, "param_groups": groups, "log": log}
                ckpt.save_resume(resume, tensors, step, extra)
            if step >= run["steps"]:
                break
            idx = torch.randperm(len(a), generator=batches)[:batch]
            loss = F.cross_entropy(model(a[idx], b[idx]), c[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update()
    frame = pd.DataFrame(log)
    frame.to_parquet(run_dir / "train_log.parquet", index=False)
    write_json(provenance(run, torch.device("cpu"), threads), run_dir / "provenance.json")
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
