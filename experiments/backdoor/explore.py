"""The backdoor experiment in the explorer: each detector's AUROC over training with a cursor at
the checkpoint, and each detector's score histograms at the checkpoint, clean vs trigger vs
benign (measure.score_histograms)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alignlab.explorer.panels import curves_panel, panel, rounded, view, write_views

DETECTORS = ("mahalanobis", "probe", "mechanistic")
KINDS = {"clean": "#0072B2", "trigger": "#D55E00", "benign": "#009E73"}
AUROCS = {
    "mahalanobis_best_auroc_trigger": "mahalanobis",
    "probe_auroc_trigger": "probe",
    "mechanistic_auroc_trigger": "mechanistic",
}


def auroc_panel(measures: pd.DataFrame, run_id: str) -> dict:
    rows = measures[(measures.run_id == run_id) & measures.measure.isin(list(AUROCS))]
    wide = rows.pivot_table(index="step", columns="measure", values="value", aggfunc="max")
    return curves_panel(
        "auroc",
        "detector AUROC, trigger vs clean, over training",
        wide.index,
        {AUROCS[m]: wide[m] for m in AUROCS if m in wide},
    )


def histogram_panel(hist: pd.DataFrame, steps) -> dict:
    """One subplot per detector, one bar trace per kind; every checkpoint a frame (x and y)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(DETECTORS), subplot_titles=DETECTORS)
    traces = [(d, k) for d in DETECTORS for k in KINDS]
    by_step = {key: rows for key, rows in hist.groupby(["step", "detector", "kind"])}
    empty = pd.DataFrame({"center": [], "density": []})

    def series(step, detector, kind):
        rows = by_step.get((step, detector, kind), empty)
        return rounded(rows.center), rounded(rows.density)

    for detector, kind in traces:
        x, y = series(steps[-1], detector, kind)
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                name=kind,
                marker={"color": KINDS[kind]},
                opacity=0.55,
                legendgroup=kind,  # the legend toggles a kind in every detector's subplot
                showlegend=detector == DETECTORS[0],
            ),  # fmt: skip
            row=1,
            col=DETECTORS.index(detector) + 1,
        )
    fig.update_layout(barmode="overlay", template="plotly_white", bargap=0,
                      title={"text": "detector scores at the checkpoint (density)"},
                      legend={"orientation": "h", "y": -0.2},
                      margin={"l": 40, "r": 10, "t": 50, "b": 40})  # fmt: skip
    frames = []
    for step in steps:
        xs, ys = zip(*(series(step, d, k) for d, k in traces), strict=True)
        frames.append({"traces": list(range(len(traces))), "update": {"x": xs, "y": ys}})
    return panel("scores", "detector score histograms", fig, frames=frames)


def explore(measures_path, run_ids, hist_paths, runs_path, out: Path) -> None:
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    roles = dict(zip(runs.run_id, runs.role, strict=True))
    views = []
    for run_id, path in sorted(zip(run_ids, hist_paths, strict=True)):
        hist = pd.read_parquet(path)
        steps = sorted(hist.step.unique())
        panels = [auroc_panel(measures, run_id), histogram_panel(hist, steps)]
        views.append(view(f"{run_id} ({roles.get(run_id, 'run')})", steps, panels))
    write_views("backdoor", "a planted backdoor, found from inside", views, out)
