"""Figures of the grokking experiment (Nanda et al. 2023), from tidy tables only."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from alignlab.figures.style import COLORS, DOUBLE, house_style, save, shade_phases


def _series(measures: pd.DataFrame, run_id: str, measure: str, component: str = "") -> pd.Series:
    rows = measures[
        (measures.run_id == run_id)
        & (measures.measure == measure)
        & (measures.component == component)
    ]
    return rows.set_index("step")["value"].sort_index()


def canonical_and_control(runs: pd.DataFrame, canonical_seed: int) -> tuple[str, str | None]:
    """The canonical run (the seed chosen in config, weight decay on) and the wd = 0 control."""
    decayed = runs[runs.weight_decay > 0]
    canonical = decayed[decayed.seed == canonical_seed]
    if canonical.empty:
        raise ValueError(f"no run with seed {canonical_seed} and weight decay > 0")
    control = runs[runs.weight_decay == 0]
    return canonical.run_id.iloc[0], (control.run_id.iloc[0] if len(control) else None)


def _spans(phases: pd.DataFrame, run_id: str) -> list[tuple[str, float, float]]:
    rows = phases[phases.run_id == run_id]
    return list(rows[["phase", "start", "end"]].itertuples(index=False, name=None))


def _loss_panel(ax, measures, run_id, spans, title):
    shade_phases(ax, spans)
    lines = [
        ("train", "train_loss", ""),
        ("test", "test_loss", ""),
        ("restricted", "restricted_loss", ""),
        ("excluded", "excluded_loss", "all"),
    ]
    for label, measure, component in lines:
        series = _series(measures, run_id, measure, component)
        if len(series):
            ax.plot(series.index, series.values, color=COLORS[label], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title)


def loss_figure(measures, runs, phases, canonical, control, p: int):
    fig, axes = plt.subplots(1, 2 if control else 1, figsize=DOUBLE, squeeze=False)
    _loss_panel(
        axes[0, 0],
        measures,
        canonical,
        _spans(phases, canonical),
        "weight decay 1 (canonical seed)",
    )
    axes[0, 0].axhline(math.log(p), color="k", lw=0.6, ls=":", label="chance (ln p)")
    axes[0, 0].legend(loc="lower left", ncol=2)
    if control:
        _loss_panel(axes[0, 1], measures, control, [], "control: weight decay 0")
        axes[0, 1].axhline(math.log(p), color="k", lw=0.6, ls=":")
    return fig


def gini_norm_figure(measures, phases, canonical):
    fig, (left, right) = plt.subplots(1, 2, figsize=DOUBLE)
    spans = _spans(phases, canonical)
    shade_phases(left, spans)
    for name in ("W_E", "W_L"):
        series = _series(measures, canonical, f"gini_{name}")
        left.plot(
            series.index, series.values, color=COLORS[name], label=f"Gini, Fourier norms of {name}"
        )
    left.set(xlabel="epoch", ylabel="Gini coefficient", ylim=(0, 1))
    left.legend(loc="lower right")
    shade_phases(right, spans)
    norm = _series(measures, canonical, "sum_sq_weights")
    right.plot(norm.index, norm.values, color=COLORS["norm"], label="sum of squared weights")
    right.set(xlabel="epoch", ylabel="sum of squared weights")
    right.legend(loc="upper right")
    return fig


def spectrum_figure(measures, canonical):
    rows = measures[(measures.run_id == canonical) & (measures.measure == "fourier_norm_W_E")]
    final = rows[rows.step == rows.step.max()]
    freqs = final.component.astype(int).to_numpy()
    keys = set(
        measures[
            (measures.run_id == canonical) & (measures.measure == "final_key_freq")
        ].component.astype(int)
    )
    colors = [COLORS["key"] if k in keys else COLORS["W_E"] for k in freqs]
    fig, ax = plt.subplots(figsize=DOUBLE)
    ax.bar(freqs, final.value.to_numpy(), color=colors, width=0.8)
    for k, value in zip(freqs, final.value, strict=True):
        if k in keys:
            ax.annotate(str(k), (k, value), ha="center", va="bottom", fontsize=7)
    ax.set(
        xlabel="frequency k",
        ylabel="Fourier norm of W_E",
        title=f"W_E at epoch {int(final.step.max())}: key frequencies (from W_L) {sorted(keys)}",
    )
    return fig


def grokking_figures(measures_path, runs_path, phases_path, out_dir, canonical_seed: int = 0):
    """Draw losses, gini_norm and spectrum (PDF + PNG) into out_dir."""
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    phases = pd.read_parquet(phases_path)
    canonical, control = canonical_and_control(runs, canonical_seed)
    p = int(runs.set_index("run_id").loc[canonical, "p"])
    with house_style():
        save(loss_figure(measures, runs, phases, canonical, control, p), Path(out_dir), "losses")
        save(gini_norm_figure(measures, phases, canonical), Path(out_dir), "gini_norm")
        save(spectrum_figure(measures, canonical), Path(out_dir), "spectrum")
