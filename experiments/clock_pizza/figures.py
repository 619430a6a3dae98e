"""Figures of the clock-vs-pizza experiment (Zhong et al. 2023), from tidy tables only."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

from alignlab.figures.style import figure, house_style, legend_below, save

# Okabe-Ito, as in the house style.
MEASURE_COLORS = {"grad_symmetricity": "#0072B2", "distance_irrelevance": "#D55E00"}
LABELS = {
    "grad_symmetricity": "gradient symmetricity",
    "distance_irrelevance": "distance irrelevance",
}


def _final_values(markers: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    wide = markers.pivot_table(index="run_id", columns="marker", values="value")
    return runs.set_index("run_id")[["attn_rate", "seed"]].join(wide).sort_values("attn_rate")


def symmetricity_figure(measures: pd.DataFrame, markers: pd.DataFrame, runs: pd.DataFrame):
    """Left: both measures of the final checkpoint against the attention rate (each seed a dot,
    the mean a line). Right: gradient symmetricity over training, one line per rate."""
    table = _final_values(markers, runs)
    fig, axes = figure(2)
    left, right = axes[0]
    for measure, color in MEASURE_COLORS.items():
        left.scatter(table.attn_rate, table[measure], color=color, s=12, alpha=0.6)
        mean = table.groupby("attn_rate")[measure].mean()
        left.plot(mean.index, mean.values, color=color, marker="o", ms=3, label=LABELS[measure])
    left.set(
        xlabel="attention rate a (0: uniform attention, 1: softmax)",
        ylabel="value at the end of training",
        ylim=(0, 1.05),
        title="pizza (a = 0) to clock (a = 1)",
    )
    rates = sorted(table.attn_rate.unique())
    cmap = matplotlib.colormaps["viridis"]
    sym = measures[measures.measure == "grad_symmetricity"].merge(
        runs[["run_id", "attn_rate", "seed"]], on="run_id"
    )
    seed0 = sym[sym.seed == sym.seed.min()]
    lines = []
    for i, rate in enumerate(rates):
        rows = seed0[seed0.attn_rate == rate].sort_values("step")
        shade = cmap(i / max(1, len(rates) - 1))
        # "_" labels keep these out of the figure legend; they get their own below
        (line,) = right.plot(
            rows.step, rows.value, color=shade, marker="o", ms=2, lw=1.0, label=f"_a{rate}"
        )
        lines.append(line)
    right.legend(
        lines, [f"a = {rate:g}" for rate in rates], fontsize=7, loc="lower left", frameon=False
    )
    right.set(
        xlabel="epoch",
        ylabel="gradient symmetricity",
        ylim=(0, 1.05),
        title=f"over training (seed {int(seed0.seed.min()) if len(seed0) else 0})",
    )
    legend_below(fig)
    return fig


def clock_pizza_figures(measures_path, runs_path, markers_path, out_dir) -> None:
    """Draw `symmetricity` (PDF + PNG) into out_dir."""
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    markers = pd.read_parquet(markers_path)
    with house_style():
        save(symmetricity_figure(measures, markers, runs), Path(out_dir), "symmetricity")
