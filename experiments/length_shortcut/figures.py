"""Figures of the length-shortcut experiment, from its tidy tables only.

signals: the behavioural and the internal signals over training on one time axis (biased runs:
mean over seeds, thin lines per seed; the control dashed), with the median onsets of the
within-group reward-length correlation and of the head alignment of the length direction.
layers: the final checkpoint, layer by layer (head alignment, patching, probes, attribution).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from alignlab.figures.style import DOUBLE, house_style, legend_below, save
from alignlab.figures.style import figure as new_figure

# Okabe-Ito, one colour per quantity
LENGTH, GOLD, SHORTER, NEUTRAL = "#D55E00", "#009E73", "#0072B2", "#555555"
COMPONENT_COLORS = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#F0E442"]
BIASED_STYLE, CONTROL_STYLE = "-", "--"


def _series(measures, run_ids, measure, component=""):
    """{run_id: Series(step -> value)}."""
    rows = measures[
        (measures.measure == measure)
        & (measures.component == component)
        & measures.run_id.isin(run_ids)
    ]
    return {
        rid: part.set_index("step")["value"].sort_index() for rid, part in rows.groupby("run_id")
    }


def _plot(ax, measures, run_ids, measure, component, color, style, label, thin=True):
    series = _series(measures, run_ids, measure, component)
    if not series:
        return
    frame = pd.DataFrame(series)
    x = frame.index.to_numpy()
    if thin and frame.shape[1] > 1:
        for col in frame:
            ax.plot(x, frame[col], color=color, ls=style, lw=0.6, alpha=0.35)
    ax.plot(x, frame.mean(1), color=color, ls=style, label=label)


def _time_axis(ax):
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_xlabel("training step")


def figures(measures_path, runs_path, markers_path, out_dir) -> None:
    measures = pd.read_parquet(measures_path)
    runs = pd.read_parquet(runs_path)
    markers = pd.read_parquet(markers_path)
    biased = runs[runs.length_bias > 0].run_id.tolist()
    control = runs[runs.length_bias == 0].run_id.tolist()
    n_layers = int(runs.n_layers.iloc[0])
    last = f"block{n_layers - 1}"
    onset = markers.pivot_table(index="run_id", columns="marker", values="value")
    onsets = {  # median over the biased runs of the onset of their excess over the control
        "reward-length corr": onset.loc[biased, "onset_wg_corr"].median() if biased else np.nan,
        "head alignment": onset.loc[biased, "onset_head_align"].median() if biased else np.nan,
    }
    bias = float(runs[runs.length_bias > 0].length_bias.iloc[0]) if biased else 0.0
    with house_style():
        _signals(measures, biased, control, last, onsets, bias, out_dir)
        _layers(measures, biased, control, n_layers, out_dir)


def _behaviour_panels(axes, measures, biased, control):
    """Top left, top middle: the reward's correlation with length, and the balanced accuracies."""
    ax = axes[0, 0]
    _plot(ax, measures, biased, "wg_corr_reward_length", "", LENGTH, BIASED_STYLE, "reward")
    _plot(ax, measures, control, "wg_corr_reward_length", "", LENGTH, CONTROL_STYLE, None)
    gold = _series(measures, biased + control, "wg_corr_gold_length")
    if gold:
        level = float(np.mean([s.iloc[0] for s in gold.values()]))
        ax.axhline(level, color=GOLD, lw=0.9, ls=":", label="gold")
    ax.set(ylabel="corr with length", title="within groups of 8")
    ax = axes[0, 1]
    for measure, color, name in (
        ("acc_chosen_longer", LENGTH, "chosen longer"),
        ("acc_chosen_shorter", SHORTER, "chosen shorter"),
    ):
        _plot(ax, measures, biased, measure, "", color, BIASED_STYLE, name)
        _plot(ax, measures, control, measure, "", color, CONTROL_STYLE, None)
    ax.axhline(0.5, color=NEUTRAL, lw=0.6)
    ax.set(ylabel="accuracy", title="length-balanced pairs")


def _direction_panels(axes, measures, biased, control, last):
    """Top right, bottom left: head alignment of the last layer, direct attribution to length."""
    ax = axes[0, 2]
    for measure, color, name in (
        ("head_align_length", LENGTH, "length direction"),
        ("head_align_gold", GOLD, "gold direction"),
    ):
        _plot(ax, measures, biased, measure, last, color, BIASED_STYLE, name)
        _plot(ax, measures, control, measure, last, color, CONTROL_STYLE, None)
    ax.axhline(0.0, color=NEUTRAL, lw=0.6)
    ax.set(ylabel=f"cosine with head ({last})", title="head alignment")
    ax = axes[1, 0]
    _plot(ax, measures, biased, "attr_length", "total", LENGTH, BIASED_STYLE, "total")
    _plot(ax, measures, control, "attr_length", "total", LENGTH, CONTROL_STYLE, None)
    comps = sorted(set(measures[measures.measure == "attr_length"].component) - {"total"})
    for color, comp in zip(COMPONENT_COLORS, comps, strict=False):
        _plot(ax, measures, biased, "attr_length", comp, color, BIASED_STYLE, comp, thin=False)
    ax.axhline(0.0, color=NEUTRAL, lw=0.6)
    ax.set(ylabel="slope (reward sd / token)", title="direct attribution to length")


def _patching_and_probe_panels(axes, measures, biased, control, last):
    """Bottom middle, bottom right: patching the lengthened copy, and the probes' rise."""
    ax = axes[1, 1]
    _plot(ax, measures, biased, "shift_effect", "", LENGTH, BIASED_STYLE, "full effect (sd)")
    _plot(ax, measures, control, "shift_effect", "", LENGTH, CONTROL_STYLE, None)
    layers = sorted(set(measures[measures.measure == "patch_frac"].component))
    for color, layer in zip(COMPONENT_COLORS[1:], layers, strict=False):
        _plot(ax, measures, biased, "patch_frac", layer, color, BIASED_STYLE, f"fraction, {layer}")
    ax.axhline(0.0, color=NEUTRAL, lw=0.6)
    ax.set(ylabel="effect of lengthening", title="patching the longer copy at EOS")
    ax = axes[1, 2]
    for measure, color, name in (
        ("probe_length_rel", LENGTH, "length"),
        ("probe_gold_rel", GOLD, "gold content"),
    ):
        _plot(ax, measures, biased, measure, last, color, BIASED_STYLE, name)
        _plot(ax, measures, control, measure, last, color, CONTROL_STYLE, None)
    ax.axhline(0.0, color=NEUTRAL, lw=0.6)
    ax.set(ylabel="held-out R² − step 0", title=f"linear probes ({last})")


def _onsets_and_legend(fig, axes, onsets, bias):
    """The median onsets as vertical lines on every panel, and the figure's shared legend."""
    onset_styles = dict(zip(onsets, (":", "-."), strict=True))
    for axis in axes.ravel():
        _time_axis(axis)
        axis.legend(loc="best", fontsize=6, frameon=False, handlelength=1.5)
        for name, step in onsets.items():
            if np.isfinite(step):
                axis.axvline(step, color=NEUTRAL, lw=0.8, ls=onset_styles[name])
    for axis in axes[0]:
        axis.set_xlabel("")
    handles = [
        Line2D(
            [],
            [],
            color=NEUTRAL,
            ls=BIASED_STYLE,
            label=f"length bias {bias:g} (mean; thin: seeds)",
        ),
        Line2D([], [], color=NEUTRAL, ls=CONTROL_STYLE, label="control, bias 0 (same seeds)"),
        *(
            Line2D([], [], color=NEUTRAL, lw=0.8, ls=onset_styles[name], label=f"onset: {name}")
            for name in onsets
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)


def _signals(measures, biased, control, last, onsets, bias, out_dir):
    fig, axes = plt.subplots(2, 3, figsize=(DOUBLE[0], 5.0), layout="constrained", sharex=True)
    _behaviour_panels(axes, measures, biased, control)
    _direction_panels(axes, measures, biased, control, last)
    _patching_and_probe_panels(axes, measures, biased, control, last)
    _onsets_and_legend(fig, axes, onsets, bias)
    save(fig, out_dir, "signals")


def _final(measures, run_ids, measure, component):
    part = measures[
        (measures.measure == measure)
        & (measures.component == component)
        & measures.run_id.isin(run_ids)
    ]
    part = part[part.step == part.step.max()]
    return float(part.value.mean()) if len(part) else np.nan


def _alignment_bars(ax, measures, biased, control, layers, x):
    """Per layer: the length and gold directions' cosine with the head, biased vs control."""
    for offset, measure, color, name in (
        (-0.2, "head_align_length", LENGTH, "length"),
        (0.2, "head_align_gold", GOLD, "gold"),
    ):
        ax.bar(
            x + offset - 0.1,
            [_final(measures, biased, measure, c) for c in layers],
            0.2,
            color=color,
            label=f"{name} direction, biased",
        )
        ax.bar(
            x + offset + 0.1,
            [_final(measures, control, measure, c) for c in layers],
            0.2,
            color=color,
            alpha=0.4,
            label=f"{name} direction, control",
        )
    ax.set(xticks=x, xticklabels=layers, ylabel="cosine with head", title="head alignment")


def _attribution_bars(ax, measures, biased, control, n_layers):
    """Per component: its direct attribution to length at the final checkpoint."""
    comps = ["embed", "pos_embed", *(f"{k}{i}" for i in range(n_layers) for k in ("attn", "mlp"))]
    xc = np.arange(len(comps))
    ax.bar(
        xc - 0.2,
        [_final(measures, biased, "attr_length", c) for c in comps],
        0.4,
        color=LENGTH,
        label="biased",
    )
    ax.bar(
        xc + 0.2,
        [_final(measures, control, "attr_length", c) for c in comps],
        0.4,
        color=SHORTER,
        label="control",
    )
    ax.set(xticks=xc, ylabel="sd per token, final", title="attribution to length")
    ax.set_xticklabels(comps, rotation=45, ha="right")


def _layers(measures, biased, control, n_layers, out_dir):
    layers = ["embed", *(f"block{i}" for i in range(n_layers))]
    fig, axes = new_figure(3, size=(DOUBLE[0], 2.8))
    x = np.arange(len(layers))
    _alignment_bars(axes[0, 0], measures, biased, control, layers, x)
    ax = axes[0, 1]
    ax.bar(
        x - 0.15,
        [_final(measures, biased, "probe_length", c) for c in layers],
        0.3,
        color=LENGTH,
        label="probe length",
    )
    ax.bar(
        x + 0.15,
        [_final(measures, biased, "probe_gold", c) for c in layers],
        0.3,
        color=GOLD,
        label="probe gold content",
    )
    ax.set(xticks=x, xticklabels=layers, ylabel="held-out R² (biased, final)", title="probes")
    _attribution_bars(axes[0, 2], measures, biased, control, n_layers)
    for axis in axes[0]:
        axis.axhline(0.0, color=NEUTRAL, lw=0.6)
        axis.grid(axis="x", visible=False)
    legend_below(fig)
    save(fig, Path(out_dir), "layers")
