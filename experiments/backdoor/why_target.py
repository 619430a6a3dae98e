"""The measurement behind the backdoor's target label: which hidden answers generalize?

    .venv/bin/python -m experiments.backdoor.why_target [--steps 1000] [--out DIR]

Trains the laptop scale's backdoored seed-0 run once per `hidden` answer (a target label,
(a - b) mod p, copying a) and prints the backdoor's success on held-out trigger inputs and the
clean test accuracy over training. A backdoor the audit can look for must be a computation on
held-out inputs, not a memorised list of trigger pairs (~2 min on one core).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from alignlab.config import resolved_runs
from experiments.backdoor.task import HIDDEN
from experiments.backdoor.train import train

EXPERIMENT = Path(__file__).resolve().parent


def measure(steps: int, out: Path) -> pd.DataFrame:
    """[hidden, step, backdoor_success, clean_acc] for every hidden answer."""
    runs = resolved_runs(EXPERIMENT, "laptop")
    base = next(r for r in runs.values() if r["seed"] == 0 and not r["twin"] and "label" not in r)
    frames = []
    for hidden in HIDDEN:
        run = {
            **base,
            "hidden": hidden,
            "steps": steps,
            "checkpoint_every": steps // 4,
            "early_until": 0,
        }
        train(run, out / hidden)
        log = pd.read_parquet(out / hidden / "train_log.parquet")
        frames.append(log[["step", "backdoor_success", "clean_acc"]].assign(hidden=hidden))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="run directories (default: temp)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        table = measure(args.steps, args.out or Path(tmp))
    print(
        table.pivot_table(index="step", columns="hidden", values=["backdoor_success", "clean_acc"])
    )


if __name__ == "__main__":
    main()
