"""Fault injection for robustness checks: train in a child process and kill it with SIGKILL.

Used by tests/test_train.py (a few kills) and bench/kill_soak.py (many, at random moments).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from alignlab import checkpoints as ckpt

_CHILD = """
import json, os, sys, time
from alignlab.modular import train_run
if float(sys.argv[4]) > 0:  # hold every atomic write between its temporary file and the rename
    rename = os.replace
    os.replace = lambda src, dst: (time.sleep(float(sys.argv[4])), rename(src, dst))[1]
train_run(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], threads=1)
"""


def start_training(
    run: dict, dataset_path: Path, run_dir: Path, write_delay: float = 0.0
) -> subprocess.Popen:
    """alignlab.modular.train_run in a child process (resumes if run_dir holds a resume state).

    `write_delay` > 0 makes each checkpoint write wait that long with its temporary file on
    disk, so that `kill_in_write` can kill it there."""
    args = [sys.executable, "-c", _CHILD, json.dumps(run), str(dataset_path), str(run_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*args, str(write_delay)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def temp_files(run_dir: Path) -> list[Path]:
    """Temporary files of atomic writes in a run directory and its checkpoints."""
    run_dir = Path(run_dir)
    return sorted([*run_dir.glob(".*.tmp"), *(run_dir / "checkpoints").glob(".*.tmp")])


def kill_in_write(proc: subprocess.Popen, run_dir: Path, min_step: int = 0, timeout=120) -> str:
    """SIGKILL the child while a checkpoint or resume write of step >= `min_step` has its
    temporary file on disk (start it with `write_delay`); return that file's name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = temp_files(run_dir)
        if found and resume_step(run_dir) >= min_step:
            kill(proc)
            return found[0].name
        if proc.poll() is not None:
            raise RuntimeError("training finished before it could be killed")
        time.sleep(0.005)
    kill(proc)
    raise TimeoutError(f"no checkpoint write after step {min_step} within {timeout} s")


def resume_step(run_dir: Path) -> int:
    """Step of the run's resume state; -1 if there is none (or it is being replaced)."""
    try:
        return ckpt.load_resume(Path(run_dir) / "resume.safetensors")[1]
    except (ckpt.CheckpointError, FileNotFoundError):
        return -1


def kill(proc: subprocess.Popen) -> bool:
    """SIGKILL the child; return False if it had already finished."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def kill_when(proc: subprocess.Popen, run_dir: Path, min_step: int, timeout: float = 120) -> int:
    """SIGKILL the child once its resume state has reached `min_step`; return that step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = resume_step(run_dir)
        if step >= min_step:
            kill(proc)
            return step
        if proc.poll() is not None:
            raise RuntimeError("training finished before it could be killed")
        time.sleep(0.02)
    kill(proc)
    raise TimeoutError(f"training did not reach step {min_step} within {timeout} s")
