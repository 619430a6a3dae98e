"""Panels of a modular-arithmetic run, read from the measures table the grokking-style experiments
write (step, measure, component, value, run_id): losses with the phases and a cursor, and the
Fourier norms of W_E and W_L per frequency at the checkpoint, key frequencies outlined."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alignlab.explorer.panels import bars_panel, curves_panel
from alignlab.figures.style import COLORS  # the paper's colour for each quantity

LOSSES = {
    "train_loss": "train",
    "test_loss": "test",
    "restricted_loss": "restricted",
    "excluded_loss": "excluded",
}


def checkpoint_steps(measures: pd.DataFrame, run_id: str) -> np.ndarray:
    rows = measures[(measures.run_id == run_id) & (measures.measure == "train_loss")]
    return np.sort(rows.step.unique())


def loss_panel(measures: pd.DataFrame, phases: pd.DataFrame, run_id: str) -> dict:
    rows = measures[(measures.run_id == run_id) & measures.measure.isin(list(LOSSES))]
    rows = rows[(rows.measure != "excluded_loss") | (rows.component == "all")]
    wide = rows.pivot_table(index="step", columns="measure", values="value")
    spans = phases[phases.run_id == run_id]
    return curves_panel(
        "losses",
        "loss (train, test, restricted, excluded)",
        wide.index,
        {LOSSES[m]: wide[m] for m in LOSSES if m in wide},
        list(zip(spans.phase, spans.start, spans.end, strict=True)),
        log_y=True,
        colors=COLORS,
    )


def spectra_panel(measures: pd.DataFrame, run_id: str, steps) -> dict:
    run = measures[measures.run_id == run_id]
    per_step = {}
    for matrix in ("W_E", "W_L"):
        rows = run[run.measure == f"fourier_norm_{matrix}"]
        grid = rows.pivot_table(index="step", columns="component", values="value")
        grid = grid[sorted(grid.columns, key=int)].reindex(steps)
        per_step[matrix] = grid.to_numpy()
    freqs = sorted(run[run.measure == "fourier_norm_W_E"].component.unique(), key=int)
    keys = {int(c) for c in run[run.measure == "final_key_freq"].component}
    return bars_panel(
        "spectra",
        "Fourier norm per frequency (key frequencies outlined)",
        [int(f) for f in freqs],
        per_step,
        highlight=keys,
        colors=COLORS,
        x_title="frequency k",
    )
