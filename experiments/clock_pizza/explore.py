"""The clock / pizza runs in the explorer: gradient symmetricity and distance irrelevance at the
checkpoints measured, and the losses over training."""

from __future__ import annotations

import pandas as pd

from alignlab.explorer.curves import run_views
from alignlab.explorer.panels import write_views

GROUPS = [
    ("circuit", "clock (low) vs pizza (high)", {
        "grad_symmetricity": "gradient symmetricity", "distance_irrelevance": "distance irrelevance"
    }, False),
    ("losses", "loss", {"train_loss": "train", "test_loss": "test"}, True),
]  # fmt: skip


def explore(measures_path, runs_path, out) -> None:
    runs = pd.read_parquet(runs_path).sort_values(["attn_rate", "seed"])
    labels = {r.run_id: f"attention rate {r.attn_rate}, seed {r.seed}" for r in runs.itertuples()}
    write_views("clock_pizza", "clock or pizza (Zhong et al. 2023)", run_views(
        pd.read_parquet(measures_path), labels, GROUPS), out)  # fmt: skip
