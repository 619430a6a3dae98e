"""The training-loop skeleton every trainer runs on, with one resume policy.

The skeleton owns what every trainer repeats:
- at the start of the job, clean up and decide where to start (`alignlab.repair.trusted_resume`:
  remove the temporary files of interrupted writes; resume from the resume state if it verifies,
  its fingerprint matches this run and every checkpoint its log lists verifies; else start afresh
  from step 0, deleting the checkpoints and state it cannot trust, and say so in the job's log);
- the loop and its progress bar (tqdm);
- at every scheduled step: evaluate, append the log entry, save the weights (atomic,
  checksummed), ask the trainer whether to stop early, save the resume state for that step;
- the final train log and provenance (`write_outputs`).

Trainers on it: the modular trainer (`alignlab.train`), the reward models
(`alignlab.preference.train`), the LLC experiment's MLP and the vectorized groups
(`alignlab.vectorized_train`). A trainer (`Trainer`) supplies only what differs: its state (built
afresh in its constructor), one step, the evaluation, the weights to checkpoint, and which tensors
and JSON values make up its resume state (parameters, optimizer moments, its generator state:
everything the next step reads). One policy for all: exact resume from the last verified resume
state, else restart.
A resumed run reaches bit-identical results, since every step is a function of that state.

The resume state's `extra` (JSON) holds the fingerprint, the log so far, `finished`, and the
trainer's own values; a `finished` run is not trained further on a rerun.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd
import torch
from tqdm import tqdm

from alignlab import checkpoints as ckpt
from alignlab.provenance import write_json
from alignlab.repair import start_afresh, trusted_resume

RESUME_FILE = "resume.safetensors"


class Trainer(Protocol):
    """What a trainer supplies to `run_loop`. Its constructor builds the fresh state (step 0)."""

    model_config: dict  # stored with every weights checkpoint

    def step(self, step: int) -> None:
        """One update, taking the state from step `step` to `step + 1`."""

    def evaluate(self, step: int) -> dict:
        """The log entry (without "step") at scheduled step `step`; raise if training diverged."""

    def weights(self) -> dict[str, torch.Tensor]:
        """The weights checkpointed at a scheduled step."""

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor the next step depends on: params, optimizer moments, generator state."""

    def resume_extra(self) -> dict:
        """JSON-able state the next step depends on (param groups, early-stop clocks, ...)."""

    def load(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        """Inverse of `resume_tensors` / `resume_extra`."""

    def stop_early(self, step: int, log: list[dict]) -> bool:
        """After the entry for `step` is logged: True to end training here."""


@dataclass
class Progress:
    """Where a run stands: its step, its log (one entry per scheduled step), whether done."""

    step: int = 0
    log: list[dict] = field(default_factory=list)
    finished: bool = False
    start_step: int = 0
    started: float = field(default_factory=time.perf_counter)

    def timing(self) -> dict:
        elapsed = time.perf_counter() - self.started
        steps_run = self.step - self.start_step
        return {
            "wall_s": elapsed,
            "steps_run": steps_run,
            "ms_per_step": 1000 * elapsed / max(1, steps_run),
        }


def start(trainer: Trainer, run_dir: Path, fingerprint: str) -> Progress:
    """Resume `trainer` from the run's last verified resume state, or leave it fresh (step 0)
    after cleaning the run directory of what it cannot trust (`alignlab.repair`)."""
    resume = trusted_resume(Path(run_dir), fingerprint)
    if resume is None:
        return Progress()
    tensors, step, extra = resume
    trainer.load(tensors, extra)
    return Progress(step, extra["log"], extra["finished"], start_step=step)


def save_resume(trainer: Trainer, run_dir: Path, fingerprint: str, progress: Progress) -> None:
    """The resume state for `progress.step`: the trainer's tensors, then the loop's JSON."""
    extra = {
        "fingerprint": fingerprint,
        **trainer.resume_extra(),
        "log": progress.log,
        "finished": progress.finished,
    }
    ckpt.save_resume(Path(run_dir) / RESUME_FILE, trainer.resume_tensors(), progress.step, extra)


def checkpoint(
    trainer: Trainer, run_dir: Path, fingerprint: str, progress: Progress, steps: int
) -> None:
    """At a scheduled step: evaluate, log, save weights, apply early stop, save resume state."""
    step = progress.step
    progress.log.append({"step": step, **trainer.evaluate(step)})
    path = ckpt.step_path(Path(run_dir) / "checkpoints", step)
    ckpt.save_weights(trainer.weights(), path, step, trainer.model_config)
    stopped = trainer.stop_early(step, progress.log)
    if stopped and step < steps:
        tqdm.write(f"{Path(run_dir).name}: stopping early at step {step}")
    progress.finished = stopped or step >= steps
    save_resume(trainer, run_dir, fingerprint, progress)


def run_loop(
    trainer: Trainer,
    run_dir: Path,
    fingerprint: str,
    schedule: Collection[int],
    steps: int,
    bar_metric: str | None = None,
) -> Progress:
    """Train `trainer` in `run_dir` from where it may start (`start`) to `steps` or an early stop,
    checkpointing at every step of `schedule` (which must hold 0 and `steps`)."""
    schedule = set(schedule)
    if not {0, steps} <= schedule:
        raise ValueError(f"the checkpoint schedule must hold steps 0 and {steps}")
    run_dir = Path(run_dir)
    progress = start(trainer, run_dir, fingerprint)
    with tqdm(total=steps, initial=progress.step, desc=run_dir.name, mininterval=2) as bar:
        while not progress.finished:
            logged = progress.log and progress.log[-1]["step"] == progress.step
            if progress.step in schedule and not logged:
                checkpoint(trainer, run_dir, fingerprint, progress, steps)
                if bar_metric is not None:
                    bar.set_postfix({bar_metric: f"{progress.log[-1][bar_metric]:.3f}"}, False)
                continue
            trainer.step(progress.step)
            progress.step += 1
            bar.update()
    return progress


def split_stacked(group_dir: Path, run_dirs: Sequence[Path], steps_of: Sequence[set[int]]) -> None:
    """For a trainer of R stacked runs (its weights [R, ...], model config with "stacked_runs"):
    each run's weights checkpoints, sliced from the group's stacked ones at the steps of its own
    log (`steps_of[r]`), into its own folder in the single-run layout; then the stacked
    checkpoints are removed (a rerun of a finished group whose checkpoints are gone trains it
    afresh, as `trusted_resume` cannot verify them)."""
    for run_dir in run_dirs:
        start_afresh(run_dir)  # nothing an earlier run left may mix in
    stacked_files = ckpt.list_checkpoints(Path(group_dir) / "checkpoints")
    for step, path in stacked_files:
        stacked, _, model = ckpt.load_weights(path)
        model = {k: v for k, v in model.items() if k != "stacked_runs"}
        for r, run_dir in enumerate(run_dirs):
            if step in steps_of[r]:
                weights = {name: value[r].clone() for name, value in stacked.items()}
                target = ckpt.step_path(Path(run_dir) / "checkpoints", step)
                ckpt.save_weights(weights, target, step, model)
    for _, path in stacked_files:
        path.unlink()


def write_outputs(run_dir: Path, log: pd.DataFrame, provenance: dict) -> None:
    """The run's final train_log.parquet and provenance.json."""
    log.to_parquet(Path(run_dir) / "train_log.parquet", index=False)
    write_json(provenance, Path(run_dir) / "provenance.json")
