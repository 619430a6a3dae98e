"""Checkpoints: safetensors files, written atomically, addressed by step.

A run directory holds
    checkpoints/step_000100.safetensors   weights only, one per scheduled step
    resume.safetensors                    weights + optimizer moments + step + RNG, latest step only
Never pickle: `torch.load` of an untrusted file executes code.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

WEIGHTS_FORMAT = "alignlab-weights-v1"
RESUME_FORMAT = "alignlab-resume-v1"
_STEP_FILE = re.compile(r"^step_(\d+)\.safetensors$")


class CheckpointError(RuntimeError):
    """A checkpoint that is truncated, foreign or does not match the model."""


def step_path(checkpoint_dir: Path, step: int) -> Path:
    return Path(checkpoint_dir) / f"step_{step:06d}.safetensors"


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path, expected_format: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({err})") from err
    found = metadata.get("format")
    if found != expected_format:
        raise CheckpointError(
            f"{path}: foreign checkpoint (format {found!r}, expected {expected_format!r})"
        )
    return tensors, metadata


def save_weights(params: dict[str, torch.Tensor], path: Path, step: int, model_cfg: dict) -> None:
    meta = {"format": WEIGHTS_FORMAT, "step": str(step), "model": json.dumps(model_cfg)}
    atomic_save({k: v.detach().cpu() for k, v in params.items()}, path, meta)


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], int, dict]:
    """Return (params, step, model config dict) of a weights checkpoint."""
    tensors, meta = _read(path, WEIGHTS_FORMAT)
    return tensors, int(meta["step"]), json.loads(meta["model"])


def list_checkpoints(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every weights checkpoint in the directory, by step."""
    found = []
    for entry in Path(checkpoint_dir).iterdir():
        match = _STEP_FILE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def load_stack(checkpoint_dir: Path) -> tuple[list[int], dict[str, torch.Tensor], dict]:
    """All checkpoints of a run stacked along a leading checkpoint axis: (steps, params, model)."""
    steps, stacks, model_cfg = [], {}, None
    for step, path in list_checkpoints(checkpoint_dir):
        params, stored_step, model = load_weights(path)
        if stored_step != step:
            raise CheckpointError(
                f"{path}: file name says step {step}, metadata says {stored_step}"
            )
        if model_cfg is not None and model != model_cfg:
            raise CheckpointError(f"{path}: model config differs from the run's other checkpoints")
        model_cfg = model
        steps.append(step)
        for name, value in params.items():
            stacks.setdefault(name, []).append(value)
    if not steps:
        raise CheckpointError(f"{checkpoint_dir}: no checkpoints")
    return steps, {name: torch.stack(values) for name, values in stacks.items()}, model_cfg


def save_resume(path: Path, state: dict[str, torch.Tensor], step: int, extra: dict) -> None:
    """Resume state for the latest step: weights, optimizer moments, RNG, plus JSON `extra`."""
    meta = {"format": RESUME_FORMAT, "step": str(step), "extra": json.dumps(extra)}
    atomic_save(state, path, meta)


def load_resume(path: Path) -> tuple[dict[str, torch.Tensor], int, dict]:
    tensors, meta = _read(path, RESUME_FORMAT)
    return tensors, int(meta["step"]), json.loads(meta["extra"])


def rng_state_tensor() -> torch.Tensor:
    """torch's CPU RNG state as a uint8 tensor (safetensors stores tensors only)."""
    return torch.get_rng_state().clone()
