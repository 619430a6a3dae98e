"""Panels of the explorer: plotly figures, and what changes in them at each checkpoint.

A panel is {"id", "title", "figure": plotly JSON (data, layout), "frames": per checkpoint
{"traces": [trace indices], "update": {attribute: [value per trace]}} or None, "cursor": bool
(a vertical line at the checkpoint's step on the x axis)}. A view is one run of one experiment:
{"run": label, "steps": [checkpoint steps], "panels": [...]}; explorer.json holds
{"experiment", "title", "views": [...]}. Values are rounded to 4 significant digits: the page
stores what it draws, at the precision a reader sees.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PHASE_COLORS = {"memorization": "#F0E442", "circuit formation": "#56B4E9", "cleanup": "#009E73"}


def rounded(values) -> list:
    """Floats to 4 significant digits (NaN -> None, which plotly draws as a gap)."""
    array = np.asarray(values, dtype=float)
    return [None if not np.isfinite(x) else float(f"{x:.4g}") for x in array.ravel()]


def figure_json(fig) -> dict:
    """A plotly figure as plain JSON (numpy arrays become lists)."""
    import plotly.io as pio

    return json.loads(pio.to_json(fig, validate=False))


def png_uri(grid: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> str:
    """A 2-D array as a PNG data URI (an image trace's `source`): 256-colour palette PNG of the
    colour map, one byte a pixel, several times smaller than RGBA or the numbers."""
    from matplotlib import colormaps
    from PIL import Image

    scaled = (np.asarray(grid, dtype=float) - vmin) / (vmax - vmin)
    index = np.clip(np.nan_to_num(scaled) * 255 + 0.5, 0, 255).astype(np.uint8)
    palette = (colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette.ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def phase_shapes(phases: Sequence[tuple[str, float, float]]) -> list[dict]:
    """Shaded spans behind a curve panel, one per (phase, start, end)."""
    return [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": start,
            "x1": end,
            "y0": 0,
            "y1": 1,
            "fillcolor": PHASE_COLORS.get(name, "#cccccc"),
            "opacity": 0.2,
            "line": {"width": 0},
            "layer": "below",
            "name": name,
        }
        for name, start, end in phases
    ]


def panel(pid: str, title: str, fig, frames=None, cursor: bool = False) -> dict:
    return {
        "id": pid,
        "title": title,
        "figure": figure_json(fig),
        "frames": frames,
        "cursor": cursor,
    }


def view(run: str, steps: Sequence[int], panels: list[dict]) -> dict:
    for p in panels:
        if p["frames"] is not None and len(p["frames"]) != len(steps):
            raise ValueError(
                f"panel {p['id']!r} of run {run!r} has {len(p['frames'])} frames for "
                f"{len(steps)} checkpoints"
            )
    return {"run": run, "steps": [int(s) for s in steps], "panels": panels}


def write_views(experiment: str, title: str, views: list[dict], out: Path) -> None:
    if not views:
        raise ValueError(f"explorer views of {experiment!r}: none")
    document = {"experiment": experiment, "title": title, "views": views}
    Path(out).write_text(json.dumps(document, separators=(",", ":"), allow_nan=False))


def curves_panel(pid, title, x, series: dict, phases=(), log_y=False, colors=None) -> dict:
    """Lines over training with the phases shaded and a cursor at the checkpoint."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, values in series.items():
        fig.add_trace(
            go.Scatter(
                x=[int(v) for v in x],  # training steps, exact: the cursor lands on its point
                y=rounded(values),
                mode="lines",
                name=name,
                line={"color": (colors or {}).get(name)},
            )
        )
    fig.update_layout(_layout(title), shapes=phase_shapes(phases))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(type="log" if log_y else "linear")
    return panel(pid, title, fig, cursor=True)


def bars_panel(pid, title, x, per_step: dict, highlight=(), colors=None, x_title="") -> dict:
    """Bars per x at each checkpoint (per_step[name]: [checkpoints, len(x)]); bars at the
    `highlight` x values outlined in black."""
    import plotly.graph_objects as go

    fig = go.Figure()
    outline = [2 if v in set(highlight) else 0 for v in x]
    for name, grid in per_step.items():
        fig.add_trace(
            go.Bar(
                x=list(x),
                y=rounded(grid[-1]),
                name=name,
                marker={
                    "color": (colors or {}).get(name),
                    "line": {"width": outline, "color": "black"},
                },
            )
        )
    fig.update_layout(_layout(title), barmode="group")
    fig.update_xaxes(title_text=x_title)
    n_steps = len(next(iter(per_step.values())))
    traces = list(range(len(per_step)))
    frames = [
        {"traces": traces, "update": {"y": [rounded(grid[k]) for grid in per_step.values()]}}
        for k in range(n_steps)
    ]
    return panel(pid, title, fig, frames=frames)


def images_panel(pid, title, sources: list[list[str]], subtitles: list[str]) -> dict:
    """Images side by side (sources[k][i]: image i at checkpoint k, PNG data URIs)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    n = len(subtitles)
    fig = make_subplots(rows=1, cols=n, subplot_titles=subtitles, horizontal_spacing=0.03)
    for i in range(n):
        fig.add_trace(go.Image(source=sources[-1][i]), row=1, col=i + 1)
    fig.update_layout(_layout(title))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    frames = [{"traces": list(range(n)), "update": {"source": list(row)}} for row in sources]
    return panel(pid, title, fig, frames=frames)


def _layout(title: str) -> dict:
    return {
        "title": {"text": title, "font": {"size": 13}},
        "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "template": "plotly_white",
    }
