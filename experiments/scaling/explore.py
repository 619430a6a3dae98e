"""The scaling sweeps in the explorer: each run's losses and accuracies over training."""

from __future__ import annotations

import pandas as pd

from alignlab.explorer.curves import run_views
from alignlab.explorer.panels import write_views

GROUPS = [
    ("losses", "loss", {"train_loss": "train", "test_loss": "test"}, True),
    ("accuracy", "accuracy", {"train_acc": "train", "test_acc": "test"}, False),
]


def explore(curves_path, runs_path, out) -> None:
    runs = pd.read_parquet(runs_path).sort_values("run_id")
    labels = {r.run_id: f"{r.run_id} ({r.role})" for r in runs.itertuples()}
    write_views("scaling", "steps to generalize over data and model size", run_views(
        pd.read_parquet(curves_path), labels, GROUPS), out)  # fmt: skip
