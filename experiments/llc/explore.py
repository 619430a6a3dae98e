"""The LLC runs in the explorer: the local learning coefficient and the losses over training."""

from __future__ import annotations

import pandas as pd

from alignlab.explorer.curves import run_views
from alignlab.explorer.panels import write_views

GROUPS = [
    ("llc", "local learning coefficient (devinterp SGLD)", {"llc": "LLC"}, False),
    ("losses", "loss", {"train_loss": "train", "test_loss": "test"}, True),
]


def explore(measures_path, runs_path, out) -> None:
    runs = pd.read_parquet(runs_path).sort_values(["role", "run_id"])
    labels = {r.run_id: f"{r.run_id} ({r.role})" for r in runs.itertuples()}
    write_views("llc", "local learning coefficient over training", run_views(
        pd.read_parquet(measures_path), labels, GROUPS), out)  # fmt: skip
