"""$name: a toy process to start from (scaffolded by `alignlab new-experiment $name`).

Replace `run` with your training or simulation; keep its output a tidy table
[step, measure, component, value], so that collection, markers and figures stay generic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from alignlab.figures.style import COLORS, house_style, save
from alignlab.figures.style import figure as new_figure


def run(cfg: dict, out: Path) -> None:
    """A noisy exponential decay, deterministic by seed."""
    rng = np.random.default_rng(cfg["seed"])
    steps = np.arange(cfg["steps"] + 1)
    value = np.exp(-cfg["rate"] * steps) * (1 + 0.05 * rng.standard_normal(len(steps)))
    frame = pd.DataFrame({"step": steps, "measure": "value", "component": "", "value": value})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)


def summarize(run_ids, runs, tables, threshold: float, out) -> None:
    """Concatenate runs; per-run marker values; the numbers the paper quotes."""
    measures = pd.concat(
        [pd.read_parquet(t).assign(run_id=r) for r, t in zip(run_ids, tables, strict=True)]
    )
    measures.to_parquet(out.measures, index=False)
    pd.DataFrame([{"run_id": r, **runs[r]} for r in run_ids]).to_parquet(out.runs, index=False)
    final = measures[measures.step == measures.step.max()].set_index("run_id")["value"]
    markers = pd.DataFrame({"run_id": final.index, "marker": "final_value", "value": final.values})
    markers.to_parquet(out.markers, index=False)
    numbers = {"n_runs": len(run_ids), "final_value": float(final.max()), "threshold": threshold}
    Path(out.numbers).write_text(json.dumps(numbers, indent=2) + "\n")


def figure(measures_path, out_pdf, out_png) -> None:
    measures = pd.read_parquet(measures_path)
    with house_style():
        fig, axes = new_figure(1)
        ax = axes[0, 0]
        for run_id, rows in measures.groupby("run_id"):
            ax.plot(rows.step, rows.value, color=COLORS["train"], alpha=0.6, label=run_id)
        ax.set(xlabel="step", ylabel="value", yscale="log")
        save(fig, Path(out_pdf).parent, Path(out_pdf).stem)  # writes the .pdf and the .png
