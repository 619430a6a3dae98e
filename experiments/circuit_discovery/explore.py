"""circuit_discovery in the explorer: the zoo's AUCs (method x task and ablation, compiled models
and random-weight nulls), and per grokking seed the discovered circuit's overlap with the Fourier
neurons over training, the phases shaded and a cursor at the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alignlab.explorer.panels import curves_panel, panel, rounded, view, write_views

COLORS = {
    "precision": "#0072B2",
    "recall": "#E69F00",
    "jaccard": "#CC79A7",
    "nodes kept": "#555555",
}


def auc_panel(auc: pd.DataFrame, model: str) -> dict:
    import plotly.graph_objects as go

    means = (
        auc[auc.model == model]
        .groupby(["method", "task", "ablation"])
        .auc.mean()
        .unstack(["task", "ablation"])
    )
    columns = [f"{t} / {a}" for t, a in means.columns]
    fig = go.Figure(
        go.Heatmap(
            z=[rounded(row) for row in means.to_numpy()],
            x=columns,
            y=list(means.index),
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            texttemplate="%{z:.2f}",
        )
    )
    fig.update_layout(
        title={"text": f"edge ROC AUC, {model} models (mean over seeds)"},
        template="plotly_white",
        margin={"l": 70, "r": 10, "t": 40, "b": 90},
    )
    return panel(f"auc-{model}", f"AUC, {model}", fig)


def explore(auc_path, training_path, phases_path, seeds: dict, out: Path) -> None:
    auc, training = pd.read_parquet(auc_path), pd.read_parquet(training_path)
    phases = pd.read_parquet(phases_path)
    views = [
        view(
            "zoo: compiled models and nulls",
            [],
            [auc_panel(auc, m) for m in ("compiled", "random")],
        )
    ]
    for rid in sorted(training.run_id.unique(), key=seeds.get):
        rows = training[training.run_id == rid].sort_values("step")
        spans = list(
            zip(*(phases[phases.run_id == rid][c] for c in ("phase", "start", "end")), strict=True)
        )
        overlap = curves_panel(
            "overlap",
            "discovered neurons vs Fourier neurons",
            rows.step,
            {k: rows[k] for k in ("precision", "recall", "jaccard")},
            spans,
            colors=COLORS,
        )
        size = curves_panel(
            "size",
            "nodes kept at the fixed faithfulness",
            rows.step,
            {"nodes kept": rows.n_nodes},
            spans,
            colors=COLORS,
        )
        views.append(
            view(f"grokking seed {seeds[rid]} ({rid})", rows.step.tolist(), [overlap, size])
        )
    write_views(
        "circuit_discovery", "circuit discovery against ground truth, and over training", views, out
    )
