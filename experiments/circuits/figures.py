"""Figures of the circuits experiment (Nanda et al. 2023, sections 4-5), from tidy tables only.

Every panel shows the trained (canonical) run beside the random-init control.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.figures.style import COLORS, figure, house_style, legend_below, save, shade_phases
from alignlab.tables import series

TRAINED, RANDOM = "#0072B2", "#999999"


def _models(runs: pd.DataFrame) -> tuple[str, str]:
    trained = runs[runs.model == "trained"].run_id.iloc[0]
    control = runs[runs.model == "random_init"].run_id.iloc[0]
    return trained, control


def _rows(measures, run_id, measure) -> pd.DataFrame:
    return measures[(measures.run_id == run_id) & (measures.measure == measure)]


def _series(measures, run_id, measure, component="") -> pd.Series:
    return series(measures, measure, component, run_id=run_id)


def _final(measures, run_id, measure) -> pd.DataFrame:
    rows = _rows(measures, run_id, measure)
    return rows[rows.step == rows.step.max()]


def _key_freqs(runs, trained) -> list[int]:
    text = str(runs.set_index("run_id").loc[trained, "key_freqs"])
    return [int(k) for k in text.split(",") if k.strip()]


def _spans(phases, source) -> list[tuple[str, float, float]]:
    rows = phases[phases.run_id == source]
    return list(rows[["phase", "start", "end"]].itertuples(index=False, name=None))


def _control_line(ax, value, label="random init"):
    ax.axhline(value, color=RANDOM, ls="--", lw=1.0, label=label)


def neurons_figure(measures, runs, phases, threshold):
    trained, control = _models(runs)
    fig, axes = figure(3, size=(7.0, 2.8))
    hist, clusters, over = axes[0]
    bins = np.linspace(0, 1, 21)
    for run_id, color, label in ((trained, TRAINED, "trained"), (control, RANDOM, "random init")):
        values = _final(measures, run_id, "neuron_explained").value
        hist.hist(values, bins=bins, color=color, alpha=0.7, label=label)
    hist.axvline(threshold, color="k", ls=":", lw=0.8, label=f"threshold {threshold:.2f}")
    hist.set(xlabel="variance explained by best frequency", ylabel="neurons", title="neurons")

    sizes = _final(measures, trained, "neuron_cluster_size")
    sizes = sizes[sizes.component != "key"]
    freqs, counts = sizes.component.astype(int).to_numpy(), sizes.value.to_numpy()
    keys = set(_key_freqs(runs, trained))
    colors = [COLORS["key"] if k in keys else TRAINED for k in freqs]
    clusters.bar(freqs, counts, color=colors, width=1.0)
    for k, count in zip(freqs, counts, strict=True):
        if count > 0:
            clusters.annotate(str(k), (k, count), ha="center", va="bottom", fontsize=7)
    clusters.set_ylim(0, max(1.0, float(counts.max(initial=0)) * 1.12))
    random_total = _final(measures, control, "neuron_cluster_size")
    n_random = int(random_total[random_total.component != "key"].value.sum())
    clusters.set(
        xlabel="frequency k",
        ylabel="single-frequency neurons",
        title=f"clusters (random init: {n_random} neurons)",
    )

    shade_phases(over, _spans(phases, trained))
    share = _series(measures, trained, "neuron_single_freq_share")
    over.plot(share.index, share.values, color=TRAINED, label="trained")
    _control_line(over, _series(measures, control, "neuron_single_freq_share").iloc[-1])
    over.set(xlabel="epoch", ylabel=f"share with > {threshold:.0%} explained", ylim=(0, 1))
    over.set_title("over training")
    legend_below(fig)
    return fig


def heads_figure(measures, runs, phases):
    trained, control = _models(runs)
    fig, axes = figure(2)
    bars, over = axes[0]
    n_heads = len(_final(measures, trained, "head_pattern_explained"))
    x = np.arange(n_heads)
    width = 0.2
    offsets = {
        (trained, "pattern"): -1.5,
        (trained, "score"): -0.5,
        (control, "pattern"): 0.5,
        (control, "score"): 1.5,
    }
    for (run_id, kind), offset in offsets.items():
        explained = _final(measures, run_id, f"head_{kind}_explained").sort_values("component")
        freqs = _final(measures, run_id, f"head_{kind}_freq").sort_values("component")
        color = TRAINED if run_id == trained else RANDOM
        name = "trained" if run_id == trained else "random"
        what = "pattern (a, b)" if kind == "pattern" else "score (a)"
        positions = x + offset * width
        bars.bar(
            positions,
            explained.value,
            width=width,
            color=color,
            alpha=1.0 if kind == "pattern" else 0.55,
            label=f"{name}: {what}",
        )
        if run_id == trained and kind == "pattern":
            for pos, value, k in zip(positions, explained.value, freqs.value, strict=True):
                bars.annotate(f"k={int(k)}", (pos, value), ha="center", va="bottom", fontsize=7)
    bars.set(
        xticks=x,
        xticklabels=[f"head {h}" for h in x],
        ylim=(0, 1.3),
        ylabel="variance explained",
        title="heads to position 0, end",
    )
    shade_phases(over, _spans(phases, trained))
    for head in range(n_heads):
        series = _series(measures, trained, "head_pattern_explained", str(head))
        over.plot(series.index, series.values, lw=1.0, label=f"head {head}")
    over.set(
        xlabel="epoch", ylabel="pattern variance explained", ylim=(0, 1), title="over training"
    )
    bars.legend(loc="upper center", ncol=2, fontsize=6, frameon=False)
    over.legend(loc="upper left", ncol=2, fontsize=6, frameon=False)
    return fig


def logits_figure(measures, spectrum, runs, phases):
    trained, control = _models(runs)
    keys = _key_freqs(runs, trained)
    fig, axes = figure(3, size=(7.0, 2.9))
    svals, heat, over = axes[0]
    for run_id, color, label in ((trained, TRAINED, "trained"), (control, RANDOM, "random init")):
        rows = _final(measures, run_id, "W_L_singular_value")
        values = rows.sort_values("component", key=lambda c: c.astype(int)).value.to_numpy()
        values = values[values > 1e-12 * values[0]]  # centring leaves one exact zero
        svals.plot(np.arange(1, len(values) + 1), values / values[0], color=color, label=label)
    svals.axvline(2 * len(keys), color="k", ls=":", lw=0.8, label="2 x n_key")
    svals.set(
        yscale="log",
        xlabel="singular value index",
        ylabel="singular value / largest",
        title="W_L = W_out W_U",
    )

    rows = spectrum[spectrum.run_id == trained]
    n = int(rows.a_index.max()) + 1
    grid = np.zeros((n, n))
    grid[rows.a_index.to_numpy(), rows.b_index.to_numpy()] = rows.value.to_numpy()
    image = heat.imshow(grid, cmap="Blues", origin="upper", interpolation="nearest")
    ticks = [2 * k - 1 for k in keys]
    heat.set(
        xticks=ticks,
        yticks=ticks,
        xticklabels=[f"cos {k}" for k in keys],
        yticklabels=[f"cos {k}" for k in keys],
        xlabel="Fourier component over b",
        ylabel="over a",
        title="logits' 2-D Fourier norms",
    )
    heat.tick_params(axis="x", labelrotation=90, labelsize=6)
    heat.tick_params(axis="y", labelsize=6)
    heat.grid(False)
    fig.colorbar(image, ax=heat, shrink=0.8)

    shade_phases(over, _spans(phases, trained))
    top = _series(measures, trained, "W_L_top_share")
    cos = _series(measures, trained, "logit_cos_share", "key")
    over.plot(top.index, top.values, color=COLORS["W_L"], label="W_L top-2n share")
    over.plot(cos.index, cos.values, color=COLORS["restricted"], label="logit cos fit")
    for measure, component, color in (
        ("W_L_top_share", "", COLORS["W_L"]),
        ("logit_cos_share", "key", COLORS["restricted"]),
    ):
        value = _series(measures, control, measure, component).iloc[-1]
        over.axhline(value, color=color, ls="--", lw=1.0)
    over.set(xlabel="epoch", ylabel="share (dashed: random init)", ylim=(0, 1.02))
    over.set_title("over training")
    legend_below(fig)
    return fig


def ablations_figure(ablations, runs):
    trained, control = _models(runs)
    fig, axes = figure(2, size=(7.0, 3.4))
    for ax, (run_id, title) in zip(
        axes[0], ((trained, "trained"), (control, "random init")), strict=True
    ):
        rows = ablations[(ablations.run_id == run_id) & (ablations.intervention != "none")]
        # rows are in the order the interventions were run (see ablate.interventions)
        labels = list(
            dict.fromkeys(
                f"{i} {f}".strip() for i, f in zip(rows.intervention, rows.frequency, strict=True)
            )
        )
        y = np.arange(len(labels))
        for offset, split in ((-0.2, "train"), (0.2, "test")):
            part = rows[rows.split == split]
            ax.barh(y + offset, part.loss, height=0.4, color=COLORS[split], label=f"{split} split")
            base = ablations[
                (ablations.run_id == run_id)
                & (ablations.intervention == "none")
                & (ablations.split == split)
            ].loss.iloc[0]
            ax.axvline(base, color=COLORS[split], ls=":", lw=1.0, label=f"{split}: no intervention")
        ax.set_xscale("log")
        ax.set(yticks=y, title=title, xlabel="loss (float64 CE at '=')")
        ax.set_yticklabels(labels if ax is axes[0][0] else [], fontsize=7)
        ax.invert_yaxis()
    # one loss axis for both panels: the control's changes are then seen at their true size
    axes[0][1].set_xlim(axes[0][0].get_xlim())
    legend_below(fig)
    return fig


_CONTROL_SHARES = [
    ("neuron_single_freq_share", "", "single-freq neurons"),
    ("W_L_top_share", "", "W_L top-2n share"),
    ("logit_cos_share", "key", "logit cos share"),
    ("gini_W_E", "", "Gini W_E"),
    ("gini_W_L", "", "Gini W_L"),
    ("test_acc", "", "test acc"),
]
_CONTROL_LOSSES = [
    ("train_loss", "", "train"),
    ("test_loss", "", "test"),
    ("restricted_loss", "", "restricted"),
    ("excluded_loss", "all", "excluded"),
]


def controls_figure(measures, runs):
    """Every measure at the end of training beside the random-init model."""
    trained, control = _models(runs)
    fig, axes = figure(2, size=(7.0, 3.0))
    for ax, items, log in (
        (axes[0][0], _CONTROL_SHARES, False),
        (axes[0][1], _CONTROL_LOSSES, True),
    ):
        x = np.arange(len(items))
        for offset, run_id, color, label in (
            (-0.2, trained, TRAINED, "trained (end)"),
            (0.2, control, RANDOM, "random init"),
        ):
            values = [_series(measures, run_id, m, c).iloc[-1] for m, c, _ in items]
            ax.bar(x + offset, values, width=0.4, color=color, label=label)
        ax.set_xticks(x, [name for _, _, name in items], rotation=30, ha="right")
        if log:
            ax.set(yscale="log", ylabel="loss (float64 CE)", title="progress measures: losses")
        else:
            ax.set(ylim=(0, 1.05), ylabel="value", title="circuit and progress measures")
    legend_below(fig)
    return fig


def circuits_figures(
    measures_path, spectrum_path, ablations_path, runs_path, phases_path, out_dir, threshold
):
    """Draw neurons, heads, logits, ablations and controls (PDF + PNG) into out_dir."""
    measures, spectrum = pd.read_parquet(measures_path), pd.read_parquet(spectrum_path)
    ablations, runs = pd.read_parquet(ablations_path), pd.read_parquet(runs_path)
    phases = pd.read_parquet(phases_path)
    out = Path(out_dir)
    with house_style():
        save(neurons_figure(measures, runs, phases, threshold), out, "neurons")
        save(heads_figure(measures, runs, phases), out, "heads")
        save(logits_figure(measures, spectrum, runs, phases), out, "logits")
        save(ablations_figure(ablations, runs), out, "ablations")
        save(controls_figure(measures, runs), out, "controls")
