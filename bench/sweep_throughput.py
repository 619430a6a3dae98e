"""Runs per hour of a sweep on this machine: sequential vs side by side vs vectorized.

The same N small runs (default 4: p = 59, d_model 64, 4 heads x 16, d_mlp 256, 50% of pairs, AdamW
lr 1e-2, wd 1, different seeds, a fixed number of steps, evaluated every 50 steps, no early stop,
so every mode does the same work) are trained three ways, each timed by wall clock:
- sequential:   one 1-thread process trains the runs one after another (alignlab.train.train,
                checkpoints and resume state written as in the DAG);
- side by side: 2 one-thread processes, each training half of the runs (what Snakemake does with
                `--cores 2` and threads: 1);
- vectorized:   one 1-thread process trains all runs as one stacked model
                (alignlab.vectorized_train.train_vectorized).
Results: a table on stdout and bench/results/sweep_throughput.csv, with the machine's load
average at the start and end (the machine may be shared: compare modes within one invocation).

    .venv/bin/python bench/sweep_throughput.py --runs 4 --steps 300
    .venv/bin/python bench/sweep_throughput.py --device cuda   # where a GPU is lent

`make bench BENCH_ARGS=--sweeps` runs it with the other measurements.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import torch

from alignlab.data import build_dataset
from alignlab.modular import model_config, train_config
from alignlab.runtime import configure_torch
from alignlab.train import train
from alignlab.vectorized_train import train_vectorized

RESULTS = Path(__file__).parent / "results" / "sweep_throughput.csv"
BASE = {
    "p": 59,
    "op": "add",
    "frac_train": 0.5,
    "data_seed": 0,
    "seed": 0,
    "d_model": 64,
    "n_heads": 4,
    "d_head": 16,
    "d_mlp": 256,
    "act_fn": "relu",
    "lr": 1e-2,
    "weight_decay": 1.0,
    "betas": [0.9, 0.98],
    "warmup_steps": 10,
    "checkpoint_spacing": "linear",
    "checkpoint_every": 50,
    "compile": False,
    "device": "cpu",
}


def _runs(n: int, steps: int, device: str = "cpu") -> list[dict]:
    return [{**BASE, "seed": seed, "steps": steps, "device": device} for seed in range(n)]


def _dataset():
    return build_dataset(BASE["p"], BASE["op"], BASE["frac_train"], BASE["data_seed"])


def _train_sequential(runs: list[dict], root: str) -> None:
    configure_torch(1)
    ds = _dataset()
    for run in runs:
        run_dir = Path(root) / f"seed{run['seed']}"
        train(model_config(run), train_config(run), ds, run_dir, threads=1, run_config=run)


def sequential(runs, root) -> float:
    started = time.perf_counter()
    _train_sequential(runs, root)
    return time.perf_counter() - started


def side_by_side(runs, root, processes: int = 2) -> float:
    ctx = mp.get_context("spawn")
    chunks = [runs[i::processes] for i in range(processes)]
    started = time.perf_counter()
    procs = [ctx.Process(target=_train_sequential, args=(chunk, root)) for chunk in chunks]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a side-by-side worker failed (exit code {proc.exitcode})")
    return time.perf_counter() - started


def vectorized(runs, root) -> float:
    configure_torch(1)
    ds = _dataset()
    started = time.perf_counter()
    train_vectorized(
        model_config(runs[0]),
        [train_config(run) for run in runs],
        ds,
        Path(root) / "group",
        run_dirs=[Path(root) / f"seed{run['seed']}" for run in runs],
        run_configs=runs,
        threads=1,
    )
    return time.perf_counter() - started


MODES = {
    "sequential (1 process x 1 thread)": sequential,
    "side by side (2 processes x 1 thread)": side_by_side,
    "vectorized (1 process x 1 thread)": vectorized,
}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is lent")
    args = parser.parse_args(argv)
    configure_torch(1)
    runs = _runs(args.runs, args.steps, args.device)
    rows = []
    for mode, fn in MODES.items():
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="sweep_bench_") as root:
            seconds = fn(runs, root)
        rows.append(
            {
                "mode": mode,
                "runs": len(runs),
                "steps_per_run": args.steps,
                "wall_s": round(seconds, 2),
                "runs_per_hour": round(3600 * len(runs) / seconds, 1),
                "ms_per_run_step": round(1000 * seconds / (len(runs) * args.steps), 2),
                "load_avg_before": round(load_before, 2),
                "load_avg_after": round(os.getloadavg()[0], 2),
                "device": args.device,
                "cpus": os.cpu_count(),
                "torch": torch.__version__,
            }
        )
        print(f"{mode:40s} {seconds:7.1f} s  {rows[-1]['runs_per_hour']:8.1f} runs/h", flush=True)
    base = rows[0]["runs_per_hour"]
    for row in rows:
        row["speedup_vs_sequential"] = round(row["runs_per_hour"] / base, 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cols = ["mode", "wall_s", "runs_per_hour", "speedup_vs_sequential", "load_avg_before"]
    print("\n" + " | ".join(cols))
    for row in rows:
        print(" | ".join(str(row[c]) for c in cols))
    print(f"\nwritten: {RESULTS}")
    return rows


if __name__ == "__main__":
    main()
