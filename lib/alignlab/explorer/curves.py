"""Views of runs whose evidence is quantities over training: one curves panel per group of
measures from a tidy table (run_id, step, measure, value[, component]), a cursor at the
checkpoint. The experiments without views of their own (llc, clock_pizza, scaling,
length_shortcut) are drawn with this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from alignlab.explorer.panels import curves_panel, view

# (panel id, title, {measure: label}, log y axis)
Group = tuple[str, str, Mapping[str, str], bool]


def run_views(table: pd.DataFrame, labels: Mapping[str, str], groups: Sequence[Group]) -> list:
    """One view per run in `labels` (run_id -> label, in that order); a measure with components
    is drawn as their mean."""
    views = []
    for run_id, label in labels.items():
        rows = table[table.run_id == run_id]
        panels = []
        for pid, title, measures, log_y in groups:
            chosen = rows[rows.measure.isin(list(measures))]
            if chosen.empty:
                continue
            wide = chosen.pivot_table(
                index="step", columns="measure", values="value", aggfunc="mean"
            )
            series = {measures[m]: wide[m] for m in measures if m in wide}
            panels.append(curves_panel(pid, title, wide.index, series, log_y=log_y))
        if panels:
            views.append(view(label, np.sort(rows.step.unique()), panels))
    return views
