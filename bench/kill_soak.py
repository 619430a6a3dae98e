"""Soak test: SIGKILL training at random moments, resume, and compare with an uninterrupted run.

Each round trains the same small run to completion, killed `--kills-per-run` times at random
moments (uniform over the expected run time) and resumed each time; its log and final weights
must equal, bit for bit, those of one uninterrupted run (same thread count and compile setting).

    .venv/bin/python bench/kill_soak.py --kills 20
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from alignlab import checkpoints as ckpt
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
    logs = [pd.read_parquet(d / "train_log.parquet") for d in (run_dir, reference)]
    final = ckpt.step_path(Path("checkpoints"), RUN["steps"])
    got, want = (ckpt.load_weights(d / final)[0] for d in (run_dir, reference))
    return logs[0].equals(logs[1]) and all(torch.equal(got[k], want[k]) for k in want)


def soak_run(workdir: Path, dataset: Path, kills: int, duration: float, rng) -> int:
    """Train once with `kills` random SIGKILLs, then to completion; return kills delivered."""
    delivered = 0
    for _ in range(kills):
        proc = faults.start_training(RUN, dataset, workdir)
        time.sleep(rng.uniform(0.2, duration))
        delivered += faults.kill(proc)
    faults.start_training(RUN, dataset, workdir).wait()
    return delivered


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
        delivered, mismatches, rounds = 0, 0, 0
        while delivered < args.kills:
            run_dir = tmp / f"killed{rounds}"
            delivered += soak_run(run_dir, dataset, args.kills_per_run, duration, rng)
            mismatches += not same_result(run_dir, tmp / "reference")
            rounds += 1
    print(
        f"kill soak: {delivered} SIGKILLs over {rounds} runs, {mismatches} runs differed "
        "from the uninterrupted one"
    )
    return {"kills": delivered, "runs": rounds, "mismatches": mismatches}


if __name__ == "__main__":
    main()
