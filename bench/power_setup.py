"""Power et al.'s setup on this machine: does it grok, and what does a paper-scale run cost?

One run of the paper scale's fraction sweep (experiments/scaling/config.yaml, block `paper`):
the 2-layer pre-LN decoder (d_model 128, 4 heads, d_mlp 512) on minibatches of min(512, half the
training set), AdamW lr 1e-3, wd 1, betas (0.9, 0.98), x + y mod 97 at 50% training data, with
the paper scale's early stop (99% test accuracy held for `--patience` updates). Reports the
train and test milestones (first evaluation at >= 99% accuracy), the grokking gap between them
and ms per update; a row goes to bench/results/power_setup.csv.

    .venv/bin/python bench/power_setup.py --threads 1 --steps 6000
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

from alignlab.config import load_experiment
from alignlab.data import build_dataset
from alignlab.modular import model_config, train_config
from alignlab.train import train
from experiments.scaling.sweeps import expand_sweeps, milestone

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "power_setup.csv"


def paper_run(op: str, frac: float, seed: int) -> dict:
    """The paper scale's fraction-sweep run with these values (so the bench follows the config)."""
    runs = expand_sweeps(load_experiment(ROOT / "experiments/scaling", "paper"))
    for run in runs.values():
        if run["sweep"] == "fraction" and (run["op"], run["frac_train"], run["seed"]) == (
            op,
            frac,
            seed,
        ):
            return run
    raise SystemExit(f"no paper-scale fraction run with op {op}, frac {frac}, seed {seed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6000, help="budget of updates")
    parser.add_argument("--frac", type=float, default=0.5)
    parser.add_argument("--op", default="add")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=250, help="evaluate every N updates")
    parser.add_argument("--patience", type=int, default=500)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    run = paper_run(args.op, args.frac, args.seed) | {
        "steps": args.steps,
        "checkpoint_spacing": "linear",
        "checkpoint_every": args.every,
        "early_stop_patience": args.patience,
        "compile": False,
        "device": args.device,
    }
    dataset = build_dataset(run["p"], run["op"], run["frac_train"], run["data_seed"])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        log = train(model_config(run), train_config(run), dataset, Path(tmp), args.threads, run)
        wall = time.perf_counter() - started
    row = {
        "p": run["p"],
        "op": run["op"],
        "frac_train": run["frac_train"],
        "n_layers": run["n_layers"],
        "batch_size": run["batch_size"],
        "threads": args.threads,
        "train_99": milestone(log, "train_acc", 0.99),
        "test_99": milestone(log, "test_acc", 0.99),
        "updates": int(log.step.max()),
        "wall_s": round(wall, 1),
        "ms_per_update": round(1000 * wall / max(1, int(log.step.max())), 1),
        "load_avg": round(os.getloadavg()[0], 2),
    }
    print(log.to_string(index=False))
    for key, value in row.items():
        print(f"{key:>14}: {value}")
    RESULTS.parent.mkdir(exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


if __name__ == "__main__":
    main()
