"""Figures of the backdoor audit, from the tidy tables only.

- chronology: every detector's trigger AUROC over training beside the backdoor's success and the
  clean accuracy, one panel for the backdoored models and one for their twins (each seed a line);
- size: the final values along the model-size sweep (each seed a dot, the mean a line);
- scores: per-input scores at the end of training (clean, trigger, benign novel), pooled over the
  backdoored models' seeds, for the Mahalanobis baseline and the mechanistic score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.figures.style import figure, house_style, legend_below, save

# Okabe-Ito, one colour per quantity
CURVES = {
    "mahalanobis_best_auroc_trigger": ("#0072B2", "Mahalanobis AUROC", "-"),
    "probe_auroc_trigger": ("#009E73", "held-out-trigger probe AUROC", "-"),
    "mechanistic_auroc_trigger": ("#D55E00", "mechanistic score AUROC", "-"),
    "spectral_recovered": ("#CC79A7", "spectral signatures: poison recovered", ":"),
    "backdoor_success": ("#000000", "backdoor success", "--"),
    "clean_acc": ("#999999", "clean test accuracy", "--"),
}
KIND_COLORS = {"clean": "#0072B2", "trigger": "#D55E00", "benign": "#E69F00"}


def _with_runs(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    return table.merge(runs[["run_id", "role", "seed", "d_model"]], on="run_id")


def chronology_figure(measures: pd.DataFrame, runs: pd.DataFrame):
    table = _with_runs(measures[measures.measure.isin(CURVES)], runs)
    fig, axes = figure(2)
    panels = (("canonical", "backdoored"), ("control", "twin (triggers ask for addition)"))
    for ax, (role, title) in zip(axes[0], panels, strict=True):
        rows = table[table.role == role]
        for measure, (color, label, style) in CURVES.items():
            for i, (_, seed) in enumerate(rows[rows.measure == measure].groupby("seed")):
                seed = seed.sort_values("step")
                ax.plot(seed.step, seed.value, color=color, ls=style, lw=1.0, alpha=0.8,
                        label=label if i == 0 else f"_{label}")  # fmt: skip
        ax.axhline(0.5, color="#555555", lw=0.6, alpha=0.5)
        ax.set(xlabel="step", ylabel="AUROC / share / accuracy", ylim=(-0.02, 1.02), title=title)
    legend_below(fig)
    return fig


def size_figure(measures: pd.DataFrame, runs: pd.DataFrame):
    last = measures[measures.step == measures.groupby("run_id").step.transform("max")]
    table = _with_runs(last[last.measure.isin(CURVES)], runs)
    table = table[table.role.isin(["canonical", "sweep"])].astype({"d_model": int})
    fig, axes = figure(1, size=(5.6, 3.6))
    ax = axes[0, 0]
    for measure, (color, label, style) in CURVES.items():
        rows = table[table.measure == measure]
        ax.scatter(rows.d_model, rows.value, color=color, s=10, alpha=0.6)
        mean = rows.groupby("d_model").value.mean()
        ax.plot(mean.index, mean.values, color=color, ls=style, marker="o", ms=3, label=label)
    ax.set(
        xscale="log", xlabel="d_model", ylabel="value at the end of training", ylim=(-0.02, 1.02)
    )
    ax.set_xticks(sorted(table.d_model.unique()), [str(d) for d in sorted(table.d_model.unique())])
    ax.minorticks_off()
    legend_below(fig)
    return fig


def scores_figure(scores: pd.DataFrame, runs: pd.DataFrame):
    table = _with_runs(scores, runs)
    table = table[table.role == "canonical"]
    fig, axes = figure(2)
    panels = (
        ("mahalanobis", "squared Mahalanobis distance (log10)", np.log10),
        ("mechanistic", "share of logits not explained by key frequencies", lambda x: x),
    )
    for ax, (detector, xlabel, transform) in zip(axes[0], panels, strict=True):
        rows = table[table.detector == detector]
        values = {
            k: transform(np.clip(rows[rows.kind == k].score, 1e-12, None)) for k in KIND_COLORS
        }
        edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=40)
        for kind, color in KIND_COLORS.items():
            ax.hist(values[kind], bins=edges, color=color, alpha=0.5, density=True, label=kind)
        ax.set(xlabel=xlabel, ylabel="density", title=detector)
    legend_below(fig)
    return fig


def figures(measures_path, scores_path, runs_path, out_dir) -> None:
    measures, runs = pd.read_parquet(measures_path), pd.read_parquet(runs_path)
    runs = runs[runs.part == "audit"]
    with house_style():
        save(chronology_figure(measures, runs), Path(out_dir), "chronology")
        save(size_figure(measures, runs), Path(out_dir), "size")
        save(scores_figure(pd.read_parquet(scores_path), runs), Path(out_dir), "scores")
