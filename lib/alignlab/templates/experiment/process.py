"""$name: a toy process to start from (scaffolded by `alignlab new-experiment $name`).

Replace `run` with your training or simulation; keep its output a tidy table
[step, measure, component, value], so that collection, markers and figures stay generic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alignlab import results
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


def summarize(run_ids, runs, roles, tables, threshold: float, out) -> None:
    """Stack the runs; per-run marker values; the numbers the paper quotes."""
    results.collect(run_ids, runs, roles, tables, out.measures, out.runs)
    measures = pd.read_parquet(out.measures)
    final = measures[measures.step == measures.step.max()].set_index("run_id")["value"]
    results.write_markers({rid: {"final_value": float(v)} for rid, v in final.items()}, out.markers)
    canonical = [rid for rid in run_ids if roles[rid] == "canonical"]
    numbers = {
        "n_runs": len(canonical),
        "final_value": float(final[canonical].max()),
        "threshold": threshold,
    }
    results.write_numbers(numbers, out.numbers)


def figure(measures_path, out_pdf, out_png) -> None:
    measures = pd.read_parquet(measures_path)
    with house_style():
        fig, axes = new_figure(1)
        ax = axes[0, 0]
        for run_id, rows in measures.groupby("run_id"):
            ax.plot(rows.step, rows.value, color=COLORS["train"], alpha=0.6, label=run_id)
        ax.set(xlabel="step", ylabel="value", yscale="log")
        save(fig, Path(out_pdf).parent, Path(out_pdf).stem)  # writes the .pdf and the .png
