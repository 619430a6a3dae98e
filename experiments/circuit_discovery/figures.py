"""Figures: ROC curves per task and ablation, the AUC heat map, and discovery over training."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from alignlab.figures.style import house_style, legend_below, save, shade_phases
from experiments.circuit_discovery.methods import staircase

METHOD_COLORS = {"acdc": "#0072B2", "patching": "#555555", "eap": "#E69F00", "eap_ig": "#D55E00"}
# Methods often draw the same curve: ACDC wide and pale underneath, patching dotted on top.
METHOD_LINES = {
    "acdc": ("-", 3.2, 0.45),
    "patching": (":", 1.4, 1.0),
    "eap": ("-", 1.1, 1.0),
    "eap_ig": ("--", 1.1, 1.0),
}
METHOD_NAMES = {"acdc": "ACDC", "patching": "patching", "eap": "EAP", "eap_ig": "EAP-IG"}
ABLATIONS = ("zero", "mean", "resample")
OVERLAP_COLORS = {"precision": "#0072B2", "recall": "#E69F00", "jaccard": "#CC79A7"}


def roc_figure(roc: pd.DataFrame, out_dir: Path) -> None:
    """One panel per (ablation, task): each method's ROC on the compiled model (seed 0, the
    first seed), and ACDC on the first random-weight null, dashed."""
    tasks = list(dict.fromkeys(roc.task))
    seed = roc.seed.min()
    fig, axes = plt.subplots(
        len(ABLATIONS),
        len(tasks),
        figsize=(1.75 * len(tasks) + 0.6, 5.4),
        layout="constrained",
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for i, ablation in enumerate(ABLATIONS):
        for j, task in enumerate(tasks):
            ax = axes[i, j]
            rows = roc[(roc.task == task) & (roc.ablation == ablation) & (roc.seed == seed)]
            for method, color in METHOD_COLORS.items():
                _curve(
                    ax,
                    rows[(rows.model == "compiled") & (rows.method == method)],
                    color,
                    METHOD_NAMES[method],
                    METHOD_LINES[method],
                )
            _curve(
                ax,
                rows[(rows.model == "random") & (rows.method == "acdc")],
                "#999999",
                "ACDC, random-weight null",
                ("-.", 1.0, 1.0),
            )
            ax.plot([0, 1], [0, 1], color="#cccccc", lw=0.8, zorder=0)
            ax.set_title(f"{task}, {ablation}" if i == 0 else ablation, fontsize=8)
            if i == len(ABLATIONS) - 1:
                ax.set_xlabel("false positive rate")
            if j == 0:
                ax.set_ylabel("true positive rate")
    legend_below(fig)
    save(fig, out_dir, "roc")


def _curve(ax, rows: pd.DataFrame, color: str, label: str, line) -> None:
    if rows.empty:
        return
    style, width, alpha = line
    # drawn as the staircase the AUC measures (methods.staircase_auc)
    x, y = staircase(list(zip(rows.fpr, rows.tpr, strict=True)))
    ax.plot(x, y, style, color=color, label=label, lw=width, alpha=alpha, drawstyle="steps-post")


def auc_heatmap(auc: pd.DataFrame, out_dir: Path) -> None:
    """Mean AUC over seeds: method x (task, ablation), compiled models and random-weight nulls."""
    methods = [m for m in METHOD_NAMES if m in set(auc.method)]
    tasks = list(dict.fromkeys(auc.task))
    columns = [(t, a) for t in tasks for a in ABLATIONS]
    fig, axes = plt.subplots(2, 1, figsize=(7.0, 4.4), layout="constrained", squeeze=False)
    for ax, model in zip(axes[:, 0], ("compiled", "random"), strict=True):
        means = auc[auc.model == model].groupby(["method", "task", "ablation"]).auc.mean()
        grid = np.array([[means.get((m, t, a), np.nan) for t, a in columns] for m in methods])
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (r, c), value in np.ndenumerate(grid):
            ax.text(
                c,
                r,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if value < 0.6 else "black",
            )
        ax.set_yticks(range(len(methods)), [METHOD_NAMES[m] for m in methods])
        ax.set_xticks(range(len(columns)), [a for _, a in columns], fontsize=6)
        groups = ax.secondary_xaxis("top")  # task names over their three ablations
        groups.set_xticks([3 * i + 1 for i in range(len(tasks))], tasks, fontsize=7)
        groups.tick_params(length=0)
        for i in range(1, len(tasks)):
            ax.axvline(3 * i - 0.5, color="white", lw=2)
        ax.grid(False)
        ax.set_ylabel("compiled models" if model == "compiled" else "random-weight nulls")
    fig.colorbar(image, ax=axes[:, 0], label="ROC AUC", shrink=0.8)
    save(fig, out_dir, "auc_heatmap")


def training_figure(training: pd.DataFrame, phases: pd.DataFrame, out_dir: Path) -> None:
    """Per grokking seed: the discovered neurons' precision, recall and Jaccard against the Fourier
    circuit over training, phases shaded; below, the circuit's size (nodes)."""
    run_ids = sorted(training.run_id.unique())
    fig, axes = plt.subplots(
        2, len(run_ids), figsize=(7.0, 4.2), layout="constrained", squeeze=False, sharex="col"
    )
    for j, rid in enumerate(run_ids):
        rows = training[training.run_id == rid].sort_values("step")
        spans = phases[phases.run_id == rid]
        top, bottom = axes[0, j], axes[1, j]
        for name, color in OVERLAP_COLORS.items():
            top.plot(rows.step, rows[name], ".-", color=color, label=name, ms=3)
        bottom.plot(rows.step, rows.n_nodes, ".-", color="#555555", label="nodes kept", ms=3)
        for ax in (top, bottom):
            shade_phases(ax, list(zip(spans.phase, spans.start, spans.end, strict=True)))
        top.set_ylim(-0.02, 1.02)
        top.set_title(rid.split("-")[0], fontsize=9)
        bottom.set_xlabel("step")
        if j == 0:
            top.set_ylabel("overlap with Fourier neurons")
            bottom.set_ylabel("circuit size (nodes)")
    legend_below(fig)
    save(fig, out_dir, "over_training")


def figures(auc_path, roc_path, training_path, phases_path, out_dir) -> None:
    with house_style():
        roc_figure(pd.read_parquet(roc_path), Path(out_dir))
        auc_heatmap(pd.read_parquet(auc_path), Path(out_dir))
        training_figure(pd.read_parquet(training_path), pd.read_parquet(phases_path), Path(out_dir))
