"""Soak test: SIGKILL training at random moments, resume, and compare with an uninterrupted run.

Each round trains the same small run to completion, killed `--kills-per-run` times and resumed
each time: at random moments (uniform over the expected run time), and every other kill inside a
checkpoint write (the child holds each write with its temporary file on disk; killed there).
Its log, every checkpoint file and the resume state must equal, byte for byte, those of one
uninterrupted run (same thread count and compile setting), and no temporary file may survive.

    .venv/bin/python bench/kill_soak.py --kills 20
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import pandas as pd

from alignlab import faults
from alignlab.data import build_dataset, save_dataset
from alignlab.modular import train_run

RUN = {
    "p": 23,
    "op": "add",
    "frac_train": 0.5,
    "data_seed": 0,
    "seed": 0,
    "steps": 1500,
    "d_model": 32,
    "n_heads": 2,
    "d_head": 16,
    "d_mlp": 64,
    "act_fn": "relu",
    "lr": 3e-3,
    "weight_decay": 1.0,
    "betas": [0.9, 0.98],
    "warmup_steps": 10,
    "checkpoint_spacing": "linear",
    "checkpoint_every": 25,
    "compile": False,
    "device": "cpu",
}


def same_result(run_dir: Path, reference: Path) -> bool:
    """Same train log and byte-identical checkpoints and resume state."""
    logs = [pd.read_parquet(d / "train_log.parquet") for d in (run_dir, reference)]
    files = [
        {p.name: p.read_bytes() for p in [d / "resume.safetensors", *(d / "checkpoints").iterdir()]}
        for d in (run_dir, reference)
    ]
    return logs[0].equals(logs[1]) and files[0] == files[1]


def soak_run(workdir: Path, dataset: Path, kills: int, duration: float, rng) -> tuple[int, int]:
    """Train once with `kills` SIGKILLs (every other one, from the first, inside a checkpoint
    write), then to completion; return (kills delivered, of them inside a write)."""
    delivered, in_write = 0, 0
    for i in range(kills):
        if i % 2 == 0:
            proc = faults.start_training(RUN, dataset, workdir, write_delay=0.05)
            try:
                faults.kill_in_write(proc, workdir, min_step=rng.randrange(RUN["steps"]))
                delivered, in_write = delivered + 1, in_write + 1
            except RuntimeError:  # finished first: nothing left to interrupt
                pass
            continue
        proc = faults.start_training(RUN, dataset, workdir)
        time.sleep(rng.uniform(0.2, duration))
        delivered += faults.kill(proc)
    faults.start_training(RUN, dataset, workdir).wait()
    return delivered, in_write


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--kills-per-run", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset = tmp / "ds.parquet"
        save_dataset(build_dataset(RUN["p"], RUN["op"], RUN["frac_train"], 0), dataset)
        start = time.perf_counter()
        train_run(RUN, dataset, tmp / "reference", threads=1)
        duration = time.perf_counter() - start + 2.0  # + interpreter start-up in the child
        delivered, in_write, mismatches, leftovers, rounds = 0, 0, 0, 0, 0
        while delivered < args.kills:
            run_dir = tmp / f"killed{rounds}"
            done = soak_run(run_dir, dataset, args.kills_per_run, duration, rng)
            delivered, in_write = delivered + done[0], in_write + done[1]
            mismatches += not same_result(run_dir, tmp / "reference")
            leftovers += len(faults.temp_files(run_dir))
            rounds += 1
    print(
        f"kill soak: {delivered} SIGKILLs ({in_write} inside checkpoint writes) over {rounds} "
        f"runs, {mismatches} runs differed from the uninterrupted one, {leftovers} temporary "
        "files left"
    )
    return {"kills": delivered, "in_write": in_write, "runs": rounds, "mismatches": mismatches,
            "temp_files_left": leftovers}  # fmt: skip


if __name__ == "__main__":
    main()
