"""Figures of the scaling experiment (Power et al. 2022; Liu et al. 2022), from tidy tables only.

Inputs: runs.parquet (one row per run: config values, milestones, phase, key frequencies) and
curves.parquet (run_id, step, measure, value: train/test loss and accuracy at every evaluation).
Runs that never reached the target are drawn at the top of their panel with an open marker,
labelled "not within budget", never dropped.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from alignlab.figures.style import COLORS, DOUBLE, figure, house_style, legend_below, save
from experiments.scaling.sweeps import median_steps

# Okabe-Ito, one colour per phase and per operation (colour-blind safe).
PHASE_COLORS = {
    "comprehension": "#009E73",
    "grokking": "#0072B2",
    "memorization": "#E69F00",
    "confusion": "#999999",
}
OP_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
             "#000000", "#999999"]  # fmt: skip
NEVER = "not within budget"


def _curve(curves: pd.DataFrame, run_id: str, measure: str) -> pd.Series:
    rows = curves[(curves.run_id == run_id) & (curves.measure == measure)]
    return rows.set_index("step")["value"].sort_index()


def _never_level(budget: float) -> float:
    """Where runs that never reached the target are drawn: above the budget line (log axis)."""
    return budget * 1.5


def _budget_axis(ax, budget: float, label: bool = True) -> None:
    ax.set_yscale("log")
    ax.axhline(budget, color="k", lw=0.6, ls=":", label="step budget" if label else None)


def _steps_limits(ax, steps: pd.Series, budget: float) -> None:
    """Log y limits from the smallest step reached to the 'never' row above the budget."""
    finite = steps[np.isfinite(steps)]
    low = float(finite.min()) if len(finite) else budget / 10
    bottom, top = max(1.0, low / 1.6), _never_level(budget) * 1.4
    ax.set_ylim(bottom, top)
    ticks = [t * 10**e for e in range(0, 7) for t in (1, 2, 5) if bottom <= t * 10**e <= top]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())


def fraction_figure(runs: pd.DataFrame, curves: pd.DataFrame, target_acc: float):
    """Left: steps to target test accuracy vs training fraction per operation (median over seeds
    as a line, each seed a dot). Right: test accuracy of `add`, first seed, per fraction."""
    sweep = runs[runs.sweep == "fraction"]
    fig, axes = figure(2)
    left, right = axes[0]
    budget = int(sweep.steps.max())
    never_points = []
    for i, (op, rows) in enumerate(sorted(sweep.groupby("op"))):
        color = OP_COLORS[i % len(OP_COLORS)]
        med = rows.groupby("frac_train").steps_to_target.agg(median_steps)  # never -> gap
        left.plot(med.index, med.values, "-", color=color, label=op)
        ok = rows[rows.generalized]
        left.plot(ok.frac_train, ok.steps_to_target, "o", color=color, ms=3.5, alpha=0.8)
        offsets = (rows.seed.rank(method="dense") - 1) * 0.006
        never_points += [
            (f + d, color)
            for f, d in zip(rows.frac_train[~rows.generalized], offsets, strict=False)
        ]
    _budget_axis(left, budget)
    if never_points:
        for x, color in never_points:
            left.plot(x, _never_level(budget), marker="x", color=color, ms=5, ls="none")
        left.plot([], [], marker="x", color="k", ls="none", label=NEVER)
    _steps_limits(left, sweep.steps_to_target, budget)
    left.set(
        xlabel="training fraction",
        ylabel=f"steps to {100 * target_acc:.0f}% test accuracy",
        title="steps to generalize vs training fraction",
    )
    add = sweep[sweep.op == "add"]
    if len(add):
        seed = add.seed.min()
        fractions = sorted(add.frac_train.unique())
        shades = [mcolors.to_hex(c) for c in _blues(len(fractions))]
        for frac, shade in zip(fractions, shades, strict=True):
            run_id = add[(add.frac_train == frac) & (add.seed == seed)].run_id.iloc[0]
            acc = _curve(curves, run_id, "test_acc")
            right.plot(acc.index, acc.values, color=shade, label=f"add, fraction {frac:g}")
        right.axhline(target_acc, color="k", lw=0.6, ls="--")
        right.set(
            xlabel="step",
            ylabel="test accuracy",
            ylim=(0, 1.02),
            title=f"add (seed {seed}): test accuracy",
        )
    legend_below(fig)
    return fig


def _blues(n: int):
    from matplotlib import colormaps

    return colormaps["Blues"](np.linspace(0.45, 1.0, n))


def phase_figure(runs: pd.DataFrame, curves: pd.DataFrame, phase_acc: float, phase_gap: int):
    """Left: Liu et al.'s phase diagram, decoder lr x decoder weight decay, one colour per phase,
    each cell labelled with its train / test milestones. Right: accuracy curves of one run per
    phase found."""
    sweep = runs[runs.sweep == "phase"]
    fig, axes = figure(2, size=(DOUBLE[0], 3.3))
    left, right = axes[0]
    lrs = sorted(sweep.lr.unique())
    wds = sorted(sweep.weight_decay.unique())
    codes = {name: i for i, name in enumerate(PHASE_COLORS)}
    grid = np.full((len(wds), len(lrs)), np.nan)
    for _, run in sweep.iterrows():
        i, j = wds.index(run.weight_decay), lrs.index(run.lr)
        grid[i, j] = codes[run.phase]
        text = f"{_step(run.train_milestone)}\n{_step(run.test_milestone)}"
        left.text(j, i, text, ha="center", va="center", fontsize=6.5, color="k")
    cmap = mcolors.ListedColormap(list(PHASE_COLORS.values()))
    left.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(codes) - 0.5, origin="lower", aspect="auto")
    left.set_xticks(range(len(lrs)), [f"{x:g}" for x in lrs])
    left.set_yticks(range(len(wds)), [f"{x:g}" for x in wds])
    left.grid(False)
    left.set(
        xlabel="decoder learning rate",
        ylabel="decoder weight decay",
        title=f"phases (cell: train / test step to {phase_acc:g} acc.)",
    )
    for name, color in PHASE_COLORS.items():
        left.fill_between([], [], color=color, label=name)
    shown = []
    for name in PHASE_COLORS:
        found = sweep[sweep.phase == name]
        if found.empty:
            continue
        # the cleanest example: for phases that generalize, the best final test accuracy
        ordered = found.sort_values(["final_test_acc", "lr", "weight_decay"])
        run = ordered.iloc[-1] if name in ("comprehension", "grokking") else ordered.iloc[0]
        shown.append(name)
        for measure, style in (("train_acc", ":"), ("test_acc", "-")):
            acc = _curve(curves, run.run_id, measure)
            right.plot(acc.index, acc.values, ls=style, color=PHASE_COLORS[name])
    right.plot([], [], "k:", label="train accuracy")
    right.plot([], [], "k-", label="test accuracy")
    right.axhline(phase_acc, color="k", lw=0.6, ls="--")
    right.set(
        xlabel="step",
        ylabel="accuracy",
        ylim=(0, 1.02),
        title="one run per phase (colour)",
    )
    right.set_xscale("symlog", linthresh=100)
    right.set_xlim(left=0)
    legend_below(fig)
    return fig


def _step(x: float) -> str:
    return f"{int(x)}" if math.isfinite(x) else "never"


def width_decay_figure(runs: pd.DataFrame, target_acc: float):
    """Left: steps to target accuracy vs d_model. Middle: number of key frequencies of the final
    checkpoint vs d_model. Right: steps to target accuracy vs weight decay (wd = 0: the control,
    drawn at x = 0 on a symmetric-log axis)."""
    fig, axes = figure(3, size=(DOUBLE[0], 2.8))
    steps_ax, keys_ax, decay_ax = axes[0]
    ylabel = f"steps to {100 * target_acc:.0f}% test acc."
    width = runs[runs.sweep == "width"].sort_values("d_model")
    if len(width):
        budget = int(width.steps.max())
        _budget_axis(steps_ax, budget)
        ok = width[width.generalized]
        med = ok.groupby("d_model").steps_to_target.agg(median_steps)
        steps_ax.plot(med.index, med.values, "-o", color=COLORS["test"], label="grokking step")
        _mark_never(steps_ax, width[~width.generalized].d_model, budget, COLORS["test"])
        _steps_limits(steps_ax, width.steps_to_target, budget)
        widths = sorted(width.d_model.unique())
        steps_ax.set_xscale("log")
        steps_ax.set_xticks(widths, [str(int(w)) for w in widths])
        steps_ax.minorticks_off()
        steps_ax.set(xlabel="d_model (d_mlp = 4 d_model)", ylabel=ylabel, title="width")
        keys = width.groupby("d_model").n_key_freqs.median()
        bars = keys_ax.bar(
            [str(int(w)) for w in keys.index], keys.values, color=COLORS["key"], alpha=0.8
        )
        keys_ax.bar_label(bars, fmt="%g", fontsize=7)
        keys_ax.set(xlabel="d_model", ylabel="number of key frequencies", title="key frequencies")
        keys_ax.yaxis.get_major_locator().set_params(integer=True)
    decay = runs[runs.sweep == "weight_decay"].sort_values("weight_decay")
    if len(decay):
        budget = int(decay.steps.max())
        _budget_axis(decay_ax, budget, label=False)
        ok = decay[decay.generalized]
        med = ok.groupby("weight_decay").steps_to_target.agg(median_steps)
        decay_ax.plot(med.index, med.values, "-o", color=COLORS["norm"], label="weight decay sweep")
        never = decay[~decay.generalized]
        _mark_never(decay_ax, never.weight_decay, budget, "k")
        _steps_limits(decay_ax, decay.steps_to_target, budget)
        for _, run in never.iterrows():
            decay_ax.annotate(
                f"wd = {run.weight_decay:g}: test acc.\n{run.final_test_acc:.2f} after {budget}",
                xy=(run.weight_decay, _never_level(budget)),
                xytext=(7, 0),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize=6.5,
            )
        decay_ax.set_xscale("symlog", linthresh=0.1)
        wds = sorted(decay.weight_decay.unique())
        decay_ax.set_xticks(wds, [f"{w:g}" for w in wds])
        decay_ax.minorticks_off()
        decay_ax.set(xlabel="weight decay", ylabel=ylabel, title="weight decay")
    legend_below(fig)
    return fig


def _mark_never(ax, xs, budget: float, color) -> None:
    xs = list(xs)
    if xs:
        ax.plot(xs, [_never_level(budget)] * len(xs), "x", color=color, ms=6, label=NEVER)


def scaling_figures(runs_path: Path, curves_path: Path, out_dir: Path, analysis: dict) -> None:
    runs = pd.read_parquet(runs_path)
    curves = pd.read_parquet(curves_path)
    with house_style():
        save(fraction_figure(runs, curves, analysis["target_acc"]), out_dir, "fraction")
        fig = phase_figure(runs, curves, analysis["phase_acc"], analysis["phase_gap"])
        save(fig, out_dir, "phase_diagram")
        save(width_decay_figure(runs, analysis["target_acc"]), out_dir, "width_decay")
