"""Figures of the grokking experiment (Nanda et al. 2023), from tidy tables only."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from alignlab.figures.style import COLORS, figure, house_style, legend_below, save, shade_phases
from alignlab.tables import series


def _series(measures: pd.DataFrame, run_id: str, measure: str, component: str = "") -> pd.Series:
    return series(measures, measure, component, run_id=run_id)


def canonical_and_control(runs: pd.DataFrame, canonical_seed: int) -> tuple[str, str | None]:
    """The canonical run (the seed chosen in config, weight decay on) and the wd = 0 control."""
    decayed = runs[runs.role == "canonical"]
    canonical = decayed[decayed.seed == canonical_seed]
    if canonical.empty:
        raise ValueError(f"no run with seed {canonical_seed} and weight decay > 0")
    control = runs[runs.role == "control"]
    return canonical.run_id.iloc[0], (control.run_id.iloc[0] if len(control) else None)


def _spans(phases: pd.DataFrame, run_id: str) -> list[tuple[str, float, float]]:
    rows = phases[phases.run_id == run_id]
    return list(rows[["phase", "start", "end"]].itertuples(index=False, name=None))


def _loss_panel(ax, measures, run_id, spans, title):
    """Train, test, restricted and excluded loss of one run on a log scale, phases shaded."""
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


def loss_figure(measures, phases, canonical, control, p: int):
    fig, axes = figure(2 if control else 1)
    panels = [(canonical, _spans(phases, canonical), "weight decay 1 (canonical seed)")]
    if control:
        panels.append((control, [], "control: weight decay 0 (no grokking)"))
    for ax, (run_id, spans, title) in zip(axes[0], panels, strict=True):
        _loss_panel(ax, measures, run_id, spans, title)
        ax.axhline(math.log(p), color="k", lw=0.6, ls=":", label="chance (ln p)")
    legend_below(fig)
    return fig


def gini_norm_figure(measures, phases, canonical):
    fig, axes = figure(2)
    left, right = axes[0]
    spans = _spans(phases, canonical)
    for ax in (left, right):
        shade_phases(ax, spans)
    for name in ("W_E", "W_L"):
        series = _series(measures, canonical, f"gini_{name}")
        left.plot(
            series.index, series.values, color=COLORS[name], label=f"Gini of {name}'s Fourier norms"
        )
    left.set(xlabel="epoch", ylabel="Gini coefficient", ylim=(0, 1))
    norm = _series(measures, canonical, "sum_sq_weights")
    right.plot(norm.index, norm.values, color=COLORS["norm"], label="sum of squared weights")
    right.set(xlabel="epoch", ylabel="sum of squared weights")
    legend_below(fig)
    return fig


def _final_spectrum(measures, run_id, matrix):
    rows = measures[(measures.run_id == run_id) & (measures.measure == f"fourier_norm_{matrix}")]
    final = rows[rows.step == rows.step.max()]
    return final.component.astype(int).to_numpy(), final.value.to_numpy(), int(final.step.max())


def spectrum_figure(measures, canonical):
    """Final Fourier norms per frequency of W_E and W_L, key frequencies highlighted."""
    keys = set(
        measures[
            (measures.run_id == canonical) & (measures.measure == "final_key_freq")
        ].component.astype(int)
    )
    fig, axes = figure(2)
    for ax, matrix in zip(axes[0], ("W_E", "W_L"), strict=True):
        freqs, values, step = _final_spectrum(measures, canonical, matrix)
        is_key = [k in keys for k in freqs]
        ax.bar(
            freqs, values, color=[COLORS["key"] if k else COLORS[matrix] for k in is_key], width=0.8
        )
        for k, value, key in zip(freqs, values, is_key, strict=True):
            if key:
                ax.annotate(str(k), (k, value), ha="center", va="bottom", fontsize=7)
        ax.set(
            xlabel="frequency k",
            ylabel=f"Fourier norm of {matrix}",
            title=f"{matrix}, epoch {step}",
        )
    fig.suptitle(f"key frequencies (W_L norm >= threshold x max): {sorted(keys)}", fontsize=9)
    return fig


def grokking_figures(measures_path, runs_path, phases_path, out_dir, canonical_seed: int = 0):
    """Draw losses, gini_norm and spectrum (PDF + PNG) into out_dir."""
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    phases = pd.read_parquet(phases_path)
    canonical, control = canonical_and_control(runs, canonical_seed)
    p = int(runs.set_index("run_id").loc[canonical, "p"])
    with house_style():
        save(loss_figure(measures, phases, canonical, control, p), Path(out_dir), "losses")
        save(gini_norm_figure(measures, phases, canonical), Path(out_dir), "gini_norm")
        save(spectrum_figure(measures, canonical), Path(out_dir), "spectrum")
