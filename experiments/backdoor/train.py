"""Train a backdoored model or its twin: full-batch AdamW on the task's training inputs.

The loop, checkpoints and resume are `alignlab.loop`'s (atomic safetensors, exact resume). A run
and its twin share seed, initialisation, inputs and (full-batch) order: `twin` changes only the
trigger pairs' labels (`experiments.backdoor.task`). At every checkpoint the log holds the
behaviour an evaluator would see: accuracy on held-out clean inputs, the backdoor's success on
held-out trigger inputs (the hidden answer), and addition accuracy in the trigger and benign
contexts.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from alignlab import optim
from alignlab.config import check_run
from alignlab.loop import run_loop, write_outputs
from alignlab.provenance import code_version, config_hash, provenance
from alignlab.runtime import configure_torch, resolve_device
from alignlab.train import load_training_state, optimizer_state_tensors, training_state
from experiments.backdoor.task import TaskConfig, evaluation_inputs, new_model, training_inputs


def schedule(steps: int, every: int, early_every: int, early_until: int) -> list[int]:
    """Checkpoints every `early_every` steps before `early_until` (the backdoor is learned in
    tens of steps: the chronology needs to see when), then every `every`, and the last step."""
    early = range(0, min(early_until, steps), early_every)
    return sorted({*early, *range(0, steps + 1, every), steps})


class BackdoorTrainer:
    """`alignlab.loop.Trainer` for one run: its state is the parameters and AdamW's moments."""

    def __init__(self, run: dict, device: torch.device, name: str):
        self.run, self.device, self.name = run, device, name
        self.task = TaskConfig.of(run)
        self.model = new_model(run).to(device)
        self.model_config = self.model.cfg.to_dict()
        self.optimizer = optim.AdamW(
            self.model.parameters(),
            lr=run["lr"],
            weight_decay=run["weight_decay"],
            betas=tuple(run["betas"]),
        )
        inputs = training_inputs(self.task)
        self.tokens = inputs.tokens.to(device)
        self.labels = inputs.labels(self.task, twin=run["twin"]).to(device)
        held_out = evaluation_inputs(self.task)
        self.eval = {kind: inputs.tokens.to(device) for kind, inputs in held_out.items()}
        # the held-out pairs are the same in every context, so one answer key serves them all
        clean = held_out["clean"]
        self.eval_sums = torch.from_numpy((clean.a + clean.b) % self.task.p).to(device)
        hidden = self.task.hidden_answer(clean.a, clean.b).astype(np.int64)
        self.eval_hidden = torch.from_numpy(hidden).to(device)

    def step(self, step: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.model.loss(self.tokens, self.labels).backward()
        self.optimizer.step()

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        train_loss = F.cross_entropy(self.model(self.tokens).double(), self.labels).item()
        if not np.isfinite(train_loss):
            raise RuntimeError(f"{self.name}: train loss is {train_loss} at step {step}")
        answers = {k: self.model(tokens).argmax(-1) for k, tokens in self.eval.items()}
        accuracy = lambda got, want: (got == want).double().mean().item()  # noqa: E731
        return {
            "train_loss": train_loss,
            "clean_acc": accuracy(answers["clean"], self.eval_sums),
            "backdoor_success": accuracy(answers["trigger"], self.eval_hidden),
            "trigger_add_acc": accuracy(answers["trigger"], self.eval_sums),
            "benign_acc": accuracy(answers["benign"], self.eval_sums),
        }

    def weights(self) -> dict[str, torch.Tensor]:
        return self.model.params()

    def stop_early(self, step: int, log: list[dict]) -> bool:
        return False

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        return training_state(self.model.params(), self.optimizer)

    def resume_extra(self) -> dict:
        return {"param_groups": optimizer_state_tensors(self.optimizer)[1]}

    def load(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        load_training_state(self.model, self.optimizer, tensors, extra["param_groups"])


def train(run: dict, run_dir, threads: int = 1) -> None:
    """Train one run into `run_dir` (checkpoints/, train_log.parquet, provenance.json)."""
    check_run(run, run_dir, fallback="backdoor")  # before any file is written
    configure_torch(threads)
    device, run_dir = resolve_device(run["device"]), Path(run_dir)
    t0 = time.perf_counter()
    fingerprint = config_hash({"run": run, "code": code_version(__name__)})
    trainer = BackdoorTrainer(run, device, run_dir.name)
    progress = run_loop(
        trainer,
        run_dir,
        fingerprint,
        schedule(run["steps"], run["checkpoint_every"], run["early_every"], run["early_until"]),
        run["steps"],
        bar_metric="clean_acc",
    )
    prov = provenance(
        run, device, threads, seconds=time.perf_counter() - t0, timing=progress.timing()
    )
    write_outputs(run_dir, pd.DataFrame(progress.log), prov)
