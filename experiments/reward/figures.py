"""Figures of the reward-model overoptimization experiment, from its tidy tables only."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from alignlab.figures.style import figure as new_figure
from alignlab.figures.style import house_style, legend_below, save

SWEEP_LABEL = {"rm_size": "RM size", "data_size": "data size"}
ORACLE_COLOR = "#000000"
# Okabe-Ito, one colour per ensemble rule (experiments/reward/bon.py: ENSEMBLE_RULES)
RULE_STYLE = {
    "single": ("#555555", "-"),
    "mean": ("#0072B2", "-"),
    "worst_case": ("#D55E00", "-"),
    "mean_minus_var": ("#009E73", "--"),
}


def _label(sweep: str, row) -> str:
    if sweep == "rm_size":
        return f"{row.n_params / 1000:.1f}k params"
    return f"{row.n_pairs} pairs"


def sweep_figure(curves: pd.DataFrame, fits: pd.DataFrame, sweep: str, out_dir: Path) -> None:
    """Gold (mean +/- SE over seeds, with the d(alpha - beta d) fit) and proxy vs d per cell,
    and the oracle control (proxy = gold)."""
    part = fits[fits.sweep == sweep].sort_values("value")
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, max(len(part), 1)))
    fig, axes = new_figure(3, size=(7.0, 3.2))
    ax_gold, ax_proxy, ax_oracle = axes[0]
    for color, (_, cell) in zip(colors, part.iterrows(), strict=True):
        c = curves[(curves.sweep == sweep) & (curves.value == cell.value)].sort_values("d")
        label = _label(sweep, cell)
        ax_gold.plot(c.d, c.gold, color=color, label=label)
        if np.isfinite(c.gold_se).all():
            ax_gold.fill_between(
                c.d, c.gold - c.gold_se, c.gold + c.gold_se, color=color, alpha=0.2, lw=0
            )
        d = np.linspace(0, c.d.max(), 100)
        ax_gold.plot(d, d * (cell.alpha - cell.beta * d), color=color, ls=":", lw=0.9)
        ax_gold.plot(cell.peak_d, cell.peak_gold, "o", color=color, ms=3.5)
        ax_proxy.plot(c.d, c.proxy, color=color, ls="--", label=label)
    ax_gold.set(
        xlabel="d = sqrt(KL)",
        ylabel="gold reward (base = 0)",
        title=f"gold, {SWEEP_LABEL[sweep]} sweep",
    )
    ax_proxy.set(xlabel="d = sqrt(KL)", ylabel="proxy reward (base = 0)", title="proxy")
    oracle = curves[curves.sweep == "oracle"].sort_values("d")
    if len(oracle):
        ax_oracle.plot(oracle.d, oracle.gold, color=ORACLE_COLOR, label="oracle")
    ax_oracle.set(xlabel="d = sqrt(KL)", ylabel="gold reward (base = 0)", title="oracle control")
    legend_below(fig)
    save(fig, out_dir, sweep)


def _short(v: float) -> str:
    return f"{v / 1000:.3g}k" if v >= 1000 else f"{v:g}"


def _err(part: pd.DataFrame, name: str) -> np.ndarray:
    """Asymmetric error bars from the bootstrap interval (clipped: a percentile interval need not
    contain the point estimate)."""
    low = np.maximum(0.0, part[name] - part[f"{name}_lo"])
    high = np.maximum(0.0, part[f"{name}_hi"] - part[name])
    return np.stack([low, high])


def alpha_beta_figure(fits: pd.DataFrame, out_dir: Path) -> None:
    """alpha and beta of gold = d (alpha - beta d), with bootstrap 95% intervals, vs RM size
    (parameters) and vs data size (pairs)."""
    fig, axes = new_figure(2, size=(7.0, 3.0))
    for ax, sweep, x, xlabel in (
        (axes[0][0], "rm_size", "n_params", "RM parameters"),
        (axes[0][1], "data_size", "n_pairs", "preference pairs"),
    ):
        part = fits[fits.sweep == sweep].sort_values(x)
        if part.empty:
            continue
        twin = ax.twinx()
        for axis, name, color, marker in (
            (ax, "alpha", "#0072B2", "o"),
            (twin, "beta", "#D55E00", "s"),
        ):
            axis.errorbar(
                part[x],
                part[name],
                yerr=_err(part, name),
                color=color,
                marker=marker,
                ms=3,
                capsize=2,
                label=name,
            )
        twin.axhline(0, color="#D55E00", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set(xlabel=xlabel, ylabel="alpha", title=f"{SWEEP_LABEL[sweep]} sweep")
        twin.set_ylabel("beta", color="#D55E00")
        twin.spines["right"].set_visible(True)
        twin.grid(False)
        ax.set_xticks(part[x].to_numpy(), [_short(v) for v in part[x]])
        ax.xaxis.set_minor_locator(plt.NullLocator())
    legend_below(fig)
    save(fig, out_dir, "alpha_beta")


def ensemble_figure(curves: pd.DataFrame, out_dir: Path) -> None:
    """Best-of-n gold (mean +/- SE over ensembles) and the combined proxy vs d, per ensemble
    rule: a single member, the mean, the worst case and mean - lambda var."""
    fig, axes = new_figure(2, size=(7.0, 3.0))
    ax_gold, ax_proxy = axes[0]
    for rule, (color, ls) in RULE_STYLE.items():
        c = curves[curves.rule == rule].sort_values("d")
        if c.empty:
            continue
        label = c.label.iloc[0]
        ax_gold.plot(c.d, c.gold, color=color, ls=ls, label=label)
        if np.isfinite(c.gold_se).all():
            ax_gold.fill_between(
                c.d, c.gold - c.gold_se, c.gold + c.gold_se, color=color, alpha=0.2, lw=0
            )
        peak = c.gold.idxmax()
        ax_gold.plot(c.d[peak], c.gold[peak], "o", color=color, ms=3.5)
        ax_proxy.plot(c.d, c.proxy, color=color, ls=ls, label=label)
    ax_gold.set(xlabel="d = sqrt(KL)", ylabel="gold reward (base = 0)", title="gold")
    ax_proxy.set(xlabel="d = sqrt(KL)", ylabel="proxy (member sd units)", title="proxy (combined)")
    legend_below(fig)
    save(fig, out_dir, "ensemble")


def reward_figures(curves_path, fits_path, out_dir, ensemble_curves_path=None) -> None:
    curves = pd.read_parquet(curves_path)
    fits = pd.read_parquet(fits_path)
    with house_style():
        for sweep in ("rm_size", "data_size"):
            sweep_figure(curves, fits, sweep, Path(out_dir))
        alpha_beta_figure(fits, Path(out_dir))
        if ensemble_curves_path is not None:
            ensemble_figure(pd.read_parquet(ensemble_curves_path), Path(out_dir))
