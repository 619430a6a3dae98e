"""Reward models of one shape trained together: K runs as one stacked model under torch.func.vmap.

Each run keeps everything that makes it itself: its init (its seed), its pairs, its batches (its
own `BatchOrder`, so it sees the batches it would see alone), its held-out evaluation and its
log. Only the arithmetic is shared: one forward and backward over the stacked parameters
[K, ...] (`functional_call` of the one `RewardModel` under vmap) and one AdamW over the stack,
which is element-wise and so updates each run as its own optimizer would. The step is each
run's own step (tests/test_stacked_rm.py, float64); on a CPU it is faster than K steps at the
ensemble members' size because K small matmuls become one larger one (bench/reward_time.py).

The group trains on `alignlab.loop` in its own folder (stacked checkpoints and one resume state:
a killed group resumes exactly), then `alignlab.loop.split_stacked` writes each run's weights
checkpoints into the run's folder in the single-run layout, so everything downstream reads a
stacked run exactly as a run trained alone.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from alignlab import optim
from alignlab.loop import run_loop, split_stacked
from alignlab.preference.model import RewardModel, RMConfig, init_params, n_params
from alignlab.preference.train import (
    BatchOrder,
    data_digest,
    evaluate_rm,
    log_rows,
    pair_batch,
    pair_metrics,
    schedule,
    split_pairs,
)
from alignlab.provenance import code_version, config_hash
from alignlab.train import load_optimizer_state, optimizer_state_tensors, training_state

# what runs stacked together must share: the model's shape (`rm_config`) and the step's schedule
SHARED = ("d_model", "n_layers", "n_heads", "mlp_ratio", "normalization", "batch_size", "lr",
          "weight_decay", "epochs", "min_steps", "n_evals", "n_pairs", "heldout_frac")  # fmt: skip


class _RewardAt(torch.nn.Module):
    """The reward at EOS as a module of (tokens, eos) for `functional_call` under vmap. The
    model's own forward cuts the batch after its last EOS with a Python int, which vmap cannot
    trace; the stacked batch is cut once, outside."""

    def __init__(self, model: RewardModel):
        super().__init__()
        self.m = model

    def forward(self, tokens: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
        return (self.m.residual(tokens, at=eos) @ self.m.p("unembed.W_U"))[:, 0]


def stacked_rewards(cfg: RMConfig):
    """f(params {name: [K, ...]}, tokens [K, batch, seq], eos [K, batch]) -> rewards [K, batch]:
    run k's rewards of its own batch under its own weights."""
    module = _RewardAt(RewardModel(cfg))
    each = vmap(lambda params, tokens, eos: functional_call(module, params, (tokens, eos)))

    def rewards(params, tokens, eos):
        with warnings.catch_warnings():
            # torch has no vmap rule for the CPU attention kernel and runs it per run: the same
            # result, and measured still faster overall (bench/reward_time.py)
            warnings.filterwarnings("ignore", message=".*batching rule.*")
            return each({f"m.{n}": v for n, v in params.items()}, tokens, eos)

    return rewards


def check_stackable(runs: Sequence[dict]) -> None:
    """Runs train together only if they share the step: ValueError naming the key otherwise."""
    for key in SHARED:
        values = {run.get(key) for run in runs}
        if len(values) > 1:
            raise ValueError(f"runs trained together must share {key}; got {sorted(values)}")


class StackedRMTrainer:
    """K reward-model runs as one `alignlab.loop.Trainer`. Log entries name run k's metrics
    `<metric>/<k>`; `member_logs` turns the group's log back into one log per run."""

    def __init__(self, runs: Sequence[dict], cfg: RMConfig, splits, evals: set[int], device):
        check_stackable(runs)
        self.runs, self.cfg, self.splits, self.evals, self.device = runs, cfg, splits, evals, device
        self.batch = runs[0]["batch_size"]
        self.model_config = {**cfg.to_dict(), "stacked_runs": len(runs)}
        inits = [init_params(cfg, run["seed"]) for run in runs]
        self.params = {
            name: torch.stack([init[name] for init in inits]).to(device).requires_grad_(True)
            for name in inits[0]
        }
        self.opt = optim.AdamW(
            list(self.params.values()), lr=runs[0]["lr"], weight_decay=runs[0]["weight_decay"]
        )
        self.batches = [BatchOrder(len(train["chosen_eos"]), run["seed"])
                        for run, (train, _) in zip(runs, splits, strict=True)]  # fmt: skip
        self.running: list[list[dict]] = [[] for _ in runs]
        self.rewards = stacked_rewards(cfg)

    def step(self, step: int) -> None:
        if step in self.evals:  # evaluated at this step: new running means start
            self.running = [[] for _ in self.runs]
        drawn = [pair_batch(train, order.next(self.batch))
                 for order, (train, _) in zip(self.batches, self.splits, strict=True)]  # fmt: skip
        seq = max(int(eos.max()) for _, eos in drawn) + 1  # causal: later positions never matter
        tokens = torch.stack([both[:, :seq] for both, _ in drawn]).to(self.device)
        eos = torch.stack([eos for _, eos in drawn]).to(self.device)
        r = self.rewards(self.params, tokens, eos)
        rc, rr = r[:, : self.batch], r[:, self.batch :]
        losses = -F.logsigmoid(rc - rr).mean(1)
        if not torch.isfinite(losses).all():
            k = int((~torch.isfinite(losses)).nonzero()[0])
            raise FloatingPointError(
                f"training diverged: run {k} (seed {self.runs[k]['seed']}) loss "
                f"{losses[k].item()} at step {step}"
            )
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # run k's loss depends on run k's weights only
        self.opt.step()
        for k, running in enumerate(self.running):
            running.append(pair_metrics(rc[k].detach(), rr[k].detach()))

    def member(self, k: int) -> RewardModel:
        """Run k's reward model (a copy of its slice of the stack)."""
        return RewardModel(self.cfg, {n: v[k].detach().cpu() for n, v in self.params.items()})

    def evaluate(self, step: int) -> dict[str, float]:
        entry = {}
        for k, (_, test) in enumerate(self.splits):
            model = self.member(k).to(self.device)
            own = evaluate_rm(model, test, self.running[k], self.device)
            entry |= {f"{key}/{k}": value for key, value in own.items()}
        return entry

    def weights(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().cpu().clone() for name, p in self.params.items()}

    def stop_early(self, step: int, log: list[dict]) -> bool:
        return False

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        tensors = training_state(self.weights(), self.opt)
        for k, order in enumerate(self.batches):
            tensors |= order.tensors(prefix=f"{k}.")
        return tensors

    def resume_extra(self) -> dict:
        return {
            "param_groups": optimizer_state_tensors(self.opt)[1],
            "cursors": [order.cursor for order in self.batches],
            "running": self.running,
        }

    @torch.no_grad()
    def load(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        for name, param in self.params.items():
            param.copy_(tensors[f"param.{name}"])
        load_optimizer_state(self.opt, tensors, extra["param_groups"])
        for k, (order, cursor) in enumerate(zip(self.batches, extra["cursors"], strict=True)):
            order.load(tensors, cursor, prefix=f"{k}.")
        self.running = extra["running"]


def member_logs(log: list[dict], n_runs: int) -> list[list[dict]]:
    """The group's log (entries with `<metric>/<k>` keys) as one log per run."""
    return [
        [{"step": entry["step"]}
         | {key.rsplit("/", 1)[0]: v for key, v in entry.items() if key.endswith(f"/{k}")}
         for entry in log]
        for k in range(n_runs)
    ]  # fmt: skip


def train_stacked_rms(
    runs: Sequence[dict],
    cfg: RMConfig,
    pairs: Sequence[dict],
    group_dir: Path,
    run_dirs: Sequence[Path],
    device: torch.device,
) -> list[tuple[RewardModel, list[dict]]]:
    """Train runs[k] on pairs[k] together in `group_dir` (stacked checkpoints, one resume
    state), then give each run its weights checkpoints in run_dirs[k]; returns each run's
    (model, tidy log rows [step, measure, value]), as `train_rm` does for one."""
    splits = [split_pairs(p, run["n_pairs"], run["heldout_frac"])
              for run, p in zip(runs, pairs, strict=True)]  # fmt: skip
    check_stackable(runs)
    steps, evals = schedule(runs[0], len(splits[0][0]["chosen_eos"]))
    print(
        f"{len(runs)} RMs of {n_params(cfg)} params stacked, "
        f"{len(splits[0][0]['chosen_eos'])} train pairs each, {steps} steps of batch "
        f"{runs[0]['batch_size']}"
    )
    fingerprint = config_hash(
        {"runs": list(runs), "model": cfg.to_dict(), "device": str(device),
         "data": [data_digest(train, test) for train, test in splits],
         "code": code_version(__name__)}
    )  # fmt: skip
    trainer = StackedRMTrainer(runs, cfg, splits, set(evals), device)
    t0 = time.perf_counter()
    progress = run_loop(trainer, Path(group_dir), fingerprint, evals, steps)
    logs = member_logs(progress.log, len(runs))
    split_stacked(group_dir, run_dirs, [{entry["step"] for entry in log} for log in logs])
    print(
        f"trained in {time.perf_counter() - t0:.1f} s; held-out accuracy "
        + " ".join(f"{log[-1]['eval_accuracy']:.3f}" for log in logs)
    )
    return [(trainer.member(k), log_rows(log)) for k, log in enumerate(logs)]
