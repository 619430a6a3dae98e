"""Checkpoints: checksummed safetensors files, written atomically, addressed by step.

A run directory holds
    train_log.parquet                     one row per checkpoint step: the run's checkpoint set
    checkpoints/step_000100.safetensors   weights only, one per scheduled step
    resume.safetensors                    weights + optimizer moments + step, latest step only
Every file carries the SHA-256 of its content and is byte-reproducible (`alignlab.integrity`);
every reader here verifies it and raises CheckpointError naming the file. Files of the earlier
formats (v1, no checksum) are rejected with a message to rerun training; the code change makes
Snakemake retrain anyway. Never pickle: `torch.load` of an untrusted file executes code.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from alignlab.integrity import (
    REPAIR_HINT,
    CheckpointError,
    read_verified,
    remove_stale_temps,
    with_digest,
)

__all__ = ["CheckpointError", "remove_stale_temps"]

WEIGHTS_FORMAT = "alignlab-weights-v2"
RESUME_FORMAT = "alignlab-resume-v2"
_STEP_FILE = re.compile(r"^step_(\d+)\.safetensors$")


def step_path(checkpoint_dir: Path, step: int) -> Path:
    return Path(checkpoint_dir) / f"step_{step:06d}.safetensors"


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write the checksummed file to a temporary file in the same directory, fsync, then rename
    over `path`: a reader sees the old file or the whole new one, never part of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = with_digest({k: v.detach().cpu() for k, v in tensors.items()}, metadata)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(params: dict[str, torch.Tensor], path: Path, step: int, model_cfg: dict) -> None:
    meta = {"format": WEIGHTS_FORMAT, "step": str(step), "model": json.dumps(model_cfg)}
    atomic_save(params, path, meta)


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], int, dict]:
    """Return (params, step, model config dict) of a verified weights checkpoint."""
    tensors, meta = read_verified(path, WEIGHTS_FORMAT)
    step = int(meta["step"])
    match = _STEP_FILE.match(Path(path).name)
    if match and int(match.group(1)) != step:
        detail = f"file name says step {match.group(1)}, metadata {step}"
        raise CheckpointError(f"{path}: {detail}", detail)
    return tensors, step, json.loads(meta["model"])


def list_checkpoints(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every weights checkpoint file in the directory, by step (unverified)."""
    found = []
    if Path(checkpoint_dir).is_dir():
        for entry in Path(checkpoint_dir).iterdir():
            match = _STEP_FILE.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
    return sorted(found)


def logged_steps(train_log: Path) -> list[int]:
    """The checkpoint steps a run wrote: the distinct steps of its train log."""
    return sorted({int(step) for step in pd.read_parquet(train_log, columns=["step"]).step})


def scheduled_checkpoints(checkpoint_dir: Path, steps: Sequence[int]) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoints, which must be exactly `steps` (its schedule as
    trained): a missing step is an error, not a gap in the measures; so is an unexpected one."""
    found = dict(list_checkpoints(checkpoint_dir))
    if not steps and not found:
        raise CheckpointError(f"{checkpoint_dir}: no checkpoints")
    missing = sorted(set(steps) - set(found))
    extra = sorted(set(found) - set(steps))
    if missing:
        names = ", ".join(step_path(Path(), s).name for s in missing)
        raise CheckpointError(
            f"{checkpoint_dir}: checkpoints missing at steps {missing} ({names}), which the "
            f"train log lists; {REPAIR_HINT}"
        )
    if extra:
        raise CheckpointError(
            f"{checkpoint_dir}: checkpoints at steps {extra} are not in the train log "
            f"(left from another run?); {REPAIR_HINT}"
        )
    return [(step, found[step]) for step in sorted(set(steps))]


def run_checkpoints(run_dir: Path, train_log: Path | None = None) -> list[tuple[int, Path]]:
    """`scheduled_checkpoints` of a run directory against its train log."""
    run_dir = Path(run_dir)
    steps = logged_steps(train_log or run_dir / "train_log.parquet")
    return scheduled_checkpoints(run_dir / "checkpoints", steps)


def load_stack(
    checkpoint_dir: Path, steps: Sequence[int] | None = None
) -> tuple[list[int], dict[str, torch.Tensor], dict]:
    """All checkpoints of a run stacked along a leading checkpoint axis: (steps, params, model).

    `steps`: the checkpoint steps the run wrote; None reads them from the train log beside
    `checkpoint_dir`. Every file is verified."""
    checkpoint_dir = Path(checkpoint_dir)
    if steps is None:
        steps = logged_steps(checkpoint_dir.parent / "train_log.parquet")
    found = scheduled_checkpoints(checkpoint_dir, steps)
    stacks, model_cfg = {}, None
    for _, path in found:
        params, _, model = load_weights(path)
        if model_cfg is not None and model != model_cfg:
            raise CheckpointError(f"{path}: model config differs from the run's other checkpoints")
        model_cfg = model
        for name, value in params.items():
            stacks.setdefault(name, []).append(value)
    stacked = {name: torch.stack(values) for name, values in stacks.items()}
    return [step for step, _ in found], stacked, model_cfg


def save_resume(path: Path, state: dict[str, torch.Tensor], step: int, extra: dict) -> None:
    """Resume state for the latest step: weights, optimizer moments, plus JSON `extra`."""
    meta = {"format": RESUME_FORMAT, "step": str(step), "extra": json.dumps(extra)}
    atomic_save(state, path, meta)


def load_resume(path: Path) -> tuple[dict[str, torch.Tensor], int, dict]:
    tensors, meta = read_verified(path, RESUME_FORMAT)
    return tensors, int(meta["step"]), json.loads(meta["extra"])


def first_unverified(checkpoint_dir: Path, steps: Sequence[int]) -> tuple[int, str] | None:
    """(step, reason) of the first of `steps` whose checkpoint is missing or fails verification;
    None if all verify."""
    for step in sorted(steps):
        path = step_path(checkpoint_dir, step)
        if not path.exists():
            return step, f"checkpoint {path.name} is missing"
        try:
            load_weights(path)
        except CheckpointError as err:
            return step, f"checkpoint {path.name} failed verification: {err.detail}"
    return None
