"""The grokking runs in the explorer: every run's losses with its phases, and the Fourier norms
of W_E and W_L at the checkpoint (alignlab.explorer.modular)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alignlab.explorer.modular import checkpoint_steps, loss_panel, spectra_panel
from alignlab.explorer.panels import view, write_views


def explore(measures_path, runs_path, phases_path, out: Path) -> None:
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    phases = pd.read_parquet(phases_path)
    views = []
    for row in runs.sort_values(["role", "run_id"]).itertuples():
        steps = checkpoint_steps(measures, row.run_id)
        panels = [
            loss_panel(measures, phases, row.run_id),
            spectra_panel(measures, row.run_id, steps),
        ]
        views.append(view(f"{row.run_id} ({row.role})", steps, panels))
    write_views("grokking", "grokking (Nanda et al. 2023)", views, out)
