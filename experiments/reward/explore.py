"""The reward experiment in the explorer: for each reward model, gold and proxy reward against
the KL distance d of best-of-n, its curves highlighted among the other RMs of its sweep."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alignlab.explorer.panels import panel, rounded, view, write_views

GOLD, PROXY = "#0072B2", "#E69F00"


def rm_panel(curves: pd.DataFrame, sweep: str, value) -> dict:
    import plotly.graph_objects as go

    fig = go.Figure()
    same = curves[curves.sweep == sweep]
    for other, rows in same.groupby("value"):
        if other != value:
            fig.add_trace(
                go.Scatter(
                    x=rounded(rows.d),
                    y=rounded(rows.gold),
                    mode="lines",
                    line={"color": "#cccccc", "width": 1},
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
    chosen = same[same.value == value]
    fig.add_trace(
        go.Scatter(
            x=rounded(chosen.d),
            y=rounded(chosen.gold),
            mode="lines+markers",
            name="gold",
            line={"color": GOLD, "width": 2.5},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=rounded(chosen.d),
            y=rounded(chosen.proxy),
            mode="lines+markers",
            name="proxy (this RM)",
            line={"color": PROXY, "dash": "dash"},
        )
    )
    fig.update_layout(
        title={"text": f"best-of-n: {sweep} = {value} (grey: the sweep's other RMs, gold)"},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
    )
    fig.update_xaxes(title_text="d = sqrt(KL(best-of-n || base))")
    fig.update_yaxes(title_text="reward")
    return panel("bon", "gold and proxy vs d", fig)


def explore(curves_path, out: Path) -> None:
    curves = pd.read_parquet(curves_path).sort_values(["sweep", "value", "d"])
    views = [
        view(f"{sweep} = {value}", [], [rm_panel(curves, sweep, value)])
        for (sweep, value), _ in curves.groupby(["sweep", "value"], sort=True)
    ]
    write_views("reward", "reward-model overoptimization (Gao et al. 2022)", views, out)
