"""The backdoor experiment in the explorer: each detector's AUROC over training with a cursor at
the checkpoint, and each detector's scores at the final checkpoint, clean vs trigger vs benign
(the scores table keeps the final checkpoint only)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alignlab.explorer.panels import curves_panel, panel, rounded, view, write_views

DETECTORS = ("mahalanobis", "probe", "mechanistic")
KINDS = {"clean": "#0072B2", "trigger": "#D55E00", "benign": "#009E73"}


def auroc_panel(measures: pd.DataFrame, run_id: str) -> dict:
    rows = measures[measures.run_id == run_id]
    names = {
        "mahalanobis_best_auroc_trigger": "mahalanobis",
        "probe_auroc_trigger": "probe",
        "mechanistic_auroc_trigger": "mechanistic",
    }
    rows = rows[rows.measure.isin(list(names))]
    wide = rows.pivot_table(index="step", columns="measure", values="value", aggfunc="max")
    return curves_panel(
        "auroc",
        "detector AUROC, trigger vs clean, over training",
        wide.index,
        {names[m]: wide[m] for m in names if m in wide},
    )


def scores_panel(scores: pd.DataFrame, run_id: str) -> dict:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(DETECTORS), subplot_titles=DETECTORS)
    for i, detector in enumerate(DETECTORS):
        rows = scores[(scores.run_id == run_id) & (scores.detector == detector)]
        for kind, color in KINDS.items():
            values = rows[rows.kind == kind].score
            if len(values):
                fig.add_trace(
                    go.Histogram(
                        x=rounded(values),
                        name=kind,
                        marker={"color": color},
                        opacity=0.6,
                        histnorm="probability density",
                        showlegend=i == 0,
                    ),
                    row=1,
                    col=i + 1,
                )
    fig.update_layout(
        barmode="overlay",
        template="plotly_white",
        title={"text": "detector scores at the final checkpoint"},
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
    )
    return panel("scores", "detector scores", fig)


def explore(measures_path, scores_path, runs_path, out: Path) -> None:
    measures, scores = pd.read_parquet(measures_path), pd.read_parquet(scores_path)
    runs = pd.read_parquet(runs_path)
    views = []
    for row in runs[runs.run_id.isin(set(scores.run_id))].sort_values("run_id").itertuples():
        steps = sorted(measures[measures.run_id == row.run_id].step.unique())
        views.append(
            view(
                f"{row.run_id} ({row.role})",
                steps,
                [auroc_panel(measures, row.run_id), scores_panel(scores, row.run_id)],
            )
        )
    write_views("backdoor", "a planted backdoor, found from inside", views, out)
