"""The house style: every figure uses these colours, sizes and the same save routine."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # jobs have no display
import matplotlib.pyplot as plt  # noqa: E402

# Colour-blind-safe (Okabe-Ito), one colour per quantity across all figures.
COLORS = {
    "train": "#0072B2",
    "test": "#D55E00",
    "restricted": "#009E73",
    "excluded": "#CC79A7",
    "W_E": "#0072B2",
    "W_L": "#E69F00",
    "norm": "#555555",
    "key": "#D55E00",
}
PHASE_COLORS = {"memorization": "#F0E442", "circuit formation": "#56B4E9", "cleanup": "#009E73"}

RC = {
    "figure.dpi": 150,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.4,
    "pdf.fonttype": 42,  # embed TrueType, so text stays text in the PDF
}
SINGLE = (3.4, 2.6)  # one column
DOUBLE = (7.0, 3.0)  # full width


@contextmanager
def house_style():
    with plt.rc_context(RC):
        yield


def figure(ncols: int = 1, size=DOUBLE):
    """A figure with `ncols` panels side by side, laid out by matplotlib's constrained layout."""
    return plt.subplots(1, ncols, figsize=size, layout="constrained", squeeze=False)


def legend_below(fig) -> None:
    """One legend for the whole figure, below the panels, de-duplicated by label, in as many
    columns (at most 5) as fit the figure's width."""
    handles, labels = [], []
    for axis in fig.axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    for ncol in range(min(len(labels), 5), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)
        width = legend.get_window_extent(fig.canvas.get_renderer()).width
        if width <= fig.bbox.width or ncol == 1:
            return
        legend.remove()


def outside_canvas(fig, tolerance: float = 1.0) -> list[str]:
    """Text of every legend, title, label and annotation that reaches outside the canvas (a cut
    legend reads "orization" for "memorization"), after laying the figure out."""
    fig.canvas.draw()
    renderer, canvas = fig.canvas.get_renderer(), fig.bbox
    texts = [t for legend in fig.legends for t in legend.get_texts()] + list(fig.texts)
    for axis in fig.axes:
        texts += [axis.title, axis.xaxis.label, axis.yaxis.label, *axis.texts]
        if axis.get_legend() is not None:
            texts += list(axis.get_legend().get_texts())
    cut = []
    for text in texts:
        if not text.get_visible() or not text.get_text():
            continue
        box = text.get_window_extent(renderer)
        if (
            box.x0 < canvas.x0 - tolerance
            or box.y0 < canvas.y0 - tolerance
            or box.x1 > canvas.x1 + tolerance
            or box.y1 > canvas.y1 + tolerance
        ):
            cut.append(text.get_text())
    return cut


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """Write `name`.pdf and `name`.png into out_dir; close the figure. A figure with text that
    reaches outside its canvas (a cut legend or label) is an error, not a figure."""
    cut = outside_canvas(fig)
    if cut:
        plt.close(fig)
        raise ValueError(f"figure {name!r}: text reaches outside the canvas: {cut}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in ("pdf", "png")]
    for path in paths:
        # Fixed metadata so the same tables give byte-identical PDFs.
        meta = {"CreationDate": None} if path.suffix == ".pdf" else {"Software": None}
        fig.savefig(path, metadata=meta)
    plt.close(fig)
    return paths


def shade_phases(ax, boundaries: list[tuple[str, float, float]]) -> None:
    """Shade (name, start, end) spans behind the data, labelled once for the legend."""
    for name, start, end in boundaries:
        ax.axvspan(start, end, color=PHASE_COLORS[name], alpha=0.18, lw=0, label=name, zorder=0)
