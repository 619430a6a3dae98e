"""What a rerun of a training job may trust of what an earlier (killed or damaged) run left.

A run directory holds one resume state (the latest checkpoint step: weights, optimizer moments,
the log so far) and a weights checkpoint per logged step. On every start the training job
- removes the temporary files of writes a kill interrupted;
- resumes only if the resume state verifies, belongs to this run (fingerprint), and every
  checkpoint its log lists verifies: a `finished` flag is never trusted on its own;
- if only the latest checkpoint is missing or broken, resumes from the resume state one record
  early (the resume state holds that step's weights, so the step is evaluated and written again,
  to the same bytes);
- otherwise restarts from step 0: without optimizer state at an earlier step nothing between can
  be recomputed, and training from scratch reproduces the run bit for bit;
- deletes what it does not trust (checkpoints the kept log does not list, the resume state when
  restarting, a train log of a run that is not finished), and says so in the job's log.
The user never deletes files by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from tqdm import tqdm

from alignlab import checkpoints as ckpt

Resume = tuple[dict[str, torch.Tensor], int, dict]


def _say(run_dir: Path, text: str) -> None:
    tqdm.write(f"{run_dir.name}: {text}")


def _verified_resume(run_dir: Path, fingerprint: str) -> Resume | None:
    path = run_dir / "resume.safetensors"
    if not path.exists():
        if ckpt.list_checkpoints(run_dir / "checkpoints"):
            _say(run_dir, "checkpoints without a resume state; restarting from step 0")
        return None
    try:
        tensors, step, extra = ckpt.load_resume(path)
    except ckpt.CheckpointError as err:
        _say(run_dir, f"resume state failed verification: {err}; restarting from step 0")
        return None
    if extra.get("fingerprint") != fingerprint:
        _say(run_dir, "resume state is from another config or code; starting afresh")
        return None
    return tensors, step, extra


def _checked(run_dir: Path, resume: Resume) -> Resume | None:
    """The resume state, its log trimmed if only the latest checkpoint must be rewritten; None
    if a checkpoint before the resume step is missing or broken."""
    tensors, step, extra = resume
    logged = [row["step"] for row in extra["log"]]
    bad = ckpt.first_unverified(run_dir / "checkpoints", logged)
    if bad is None:
        return resume
    bad_step, reason = bad
    if bad_step == step and logged[-1] == step:
        _say(run_dir, f"{reason}; resuming from step {step} (the resume state) to write it again")
        extra = {**extra, "log": extra["log"][:-1]}
        if "finished" in extra:
            extra["finished"] = False
        return tensors, step, extra
    _say(run_dir, f"{reason}; no resume state before step {step}: restarting from step 0")
    return None


def _discard_untrusted(run_dir: Path, keep_steps: set[int]) -> None:
    dropped = [(s, p) for s, p in ckpt.list_checkpoints(run_dir / "checkpoints")
               if s not in keep_steps]  # fmt: skip
    for _, path in dropped:
        path.unlink()
    if dropped:
        _say(run_dir, f"deleted checkpoints it cannot trust at steps {[s for s, _ in dropped]}")


def start_afresh(run_dir: Path) -> None:
    """Empty a run directory of what an earlier run left (checkpoints, resume state, train log,
    temporary files), for a job that trains from step 0."""
    run_dir = Path(run_dir)
    ckpt.remove_stale_temps(run_dir)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    (run_dir / "resume.safetensors").unlink(missing_ok=True)
    (run_dir / "train_log.parquet").unlink(missing_ok=True)


def trusted_resume(run_dir: Path, fingerprint: str) -> Resume | None:
    """The resume state to continue from, or None to start afresh; cleans the run directory to
    match (see the module doc). Call at the start of the job that owns `run_dir`."""
    run_dir = Path(run_dir)
    for stale in ckpt.remove_stale_temps(run_dir, run_dir / "checkpoints"):
        _say(run_dir, f"removed {stale.name}, left by an interrupted write")
    stored = _verified_resume(run_dir, fingerprint)
    resume = None if stored is None else _checked(run_dir, stored)
    if resume is None:
        start_afresh(run_dir)
        return None
    _discard_untrusted(run_dir, {row["step"] for row in resume[2]["log"]})
    if not resume[2].get("finished", False):
        (run_dir / "train_log.parquet").unlink(missing_ok=True)
    if resume is stored:  # else `_checked` has said why and from where
        _say(run_dir, f"resuming from step {resume[1]}")
    return resume
