"""Figures of the LLC experiment, from tidy tables only."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from alignlab.figures.style import COLORS, figure, house_style, legend_below, save, shade_phases
from alignlab.tables import series

LLC_COLOR = "#222222"
BOUNDARY_STYLE = {"color": "#555555", "lw": 0.8, "ls": "--"}


def _series(measures: pd.DataFrame, run_id: str, measure: str, component: str = "") -> pd.Series:
    return series(measures, measure, component, run_id=run_id)


def _llc_panel(ax, measures, run_id, title):
    """LLC per chain (thin) and its mean (bold, markers) over training."""
    chains = measures[(measures.run_id == run_id) & (measures.measure == "llc_chain")]
    for i, (_, rows) in enumerate(chains.groupby("component")):
        rows = rows.sort_values("step")
        ax.plot(
            rows.step,
            rows.value,
            color=LLC_COLOR,
            lw=0.6,
            alpha=0.4,
            label="LLC, single SGLD chain" if i == 0 else None,
        )
    llc = _series(measures, run_id, "llc")
    ax.plot(
        llc.index, llc.values, color=LLC_COLOR, marker="o", ms=2.5, label="LLC (mean of chains)"
    )
    ax.set(xlabel="training step", ylabel="local learning coefficient", title=title)


def _loss_panel(ax, measures, run_id, p):
    for split in ("train", "test"):
        series = _series(measures, run_id, f"{split}_loss")
        ax.plot(series.index, series.values, color=COLORS[split], label=f"{split} loss")
    ax.axhline(math.log(p), color="k", lw=0.6, ls=":", label="chance (ln p)")
    ax.set_yscale("log")
    ax.set(xlabel="training step", ylabel="cross-entropy loss")


def _mark(axes, step, label):
    if math.isfinite(step):
        for ax in axes:
            ax.axvline(step, **BOUNDARY_STYLE, label=label)


def mlp_figure(measures, runs, markers, run_id):
    p = int(runs.set_index("run_id").loc[run_id, "p"])
    values = markers[markers.run_id == run_id].set_index("marker")["value"]
    fig, axes = figure(2)
    left, right = axes[0]
    _llc_panel(left, measures, run_id, "MLP (devinterp's grokking example)")
    _loss_panel(right, measures, run_id, p)
    right.set_title(f"losses, p = {p}")
    _mark((left, right), float(values.get("test_fall", math.nan)), "test loss < 0.5 ln p")
    legend_below(fig)
    return fig


def transformer_figure(measures, runs, phases, run_id):
    p = int(runs.set_index("run_id").loc[run_id, "p"])
    spans = list(
        phases[phases.run_id == run_id][["phase", "start", "end"]].itertuples(
            index=False, name=None
        )
    )
    fig, axes = figure(2)
    left, right = axes[0]
    for ax in (left, right):
        shade_phases(ax, spans)
    _llc_panel(left, measures, run_id, "grokking transformer")
    if (_series(measures, run_id, "llc") > 0).all():
        left.set_yscale("log")  # it spans orders of magnitude
    _loss_panel(right, measures, run_id, p)
    right.set_title(f"losses, p = {p}")
    legend_below(fig)
    return fig


def _first(runs: pd.DataFrame, model: str) -> str | None:
    """The first canonical run of `model` (never a null or control: they show no development)."""
    chosen = runs[(runs.model == model) & (runs.role == "canonical")].sort_values("run_id")
    return None if chosen.empty else chosen.run_id.iloc[0]


def llc_figures(measures_path, runs_path, markers_path, phases_path, out_dir) -> None:
    """Draw llc_mlp and llc_transformer (PDF + PNG) into out_dir."""
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    markers, phases = pd.read_parquet(markers_path), pd.read_parquet(phases_path)
    mlp, transformer = _first(runs, "mlp"), _first(runs, "transformer")
    if mlp is None or transformer is None:
        raise ValueError("the LLC figures need one MLP run and one transformer run")
    with house_style():
        save(mlp_figure(measures, runs, markers, mlp), Path(out_dir), "llc_mlp")
        save(
            transformer_figure(measures, runs, phases, transformer),
            Path(out_dir),
            "llc_transformer",
        )
