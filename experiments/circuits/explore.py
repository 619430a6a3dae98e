"""The canonical grokking run in the explorer, as the circuit forms: losses and Fourier norms
(alignlab.explorer.modular), each MLP neuron's variance explained per frequency (neurons ordered
by their final best frequency, so the clusters show as blocks), and each head's attention from
'=' to the first token over all pairs (a, b), at every checkpoint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from alignlab.checkpoints import load_stack
from alignlab.explorer.modular import checkpoint_steps, loss_panel, spectra_panel
from alignlab.explorer.panels import images_panel, png_uri, view, write_views
from alignlab.models import ModelConfig
from experiments.circuits import spectra


def checkpoint_images(run_dir: Path, chunk: int) -> tuple[list[int], list[str], list[list[str]]]:
    """(steps, neuron-map PNG per checkpoint, [head pattern PNGs] per checkpoint)."""
    steps, params, model = load_stack(Path(run_dir) / "checkpoints")
    cfg = ModelConfig(**model)
    explained, patterns = [], []
    for start in range(0, len(steps), chunk):
        part = {k: v[start : start + chunk] for k, v in params.items()}
        with torch.no_grad():
            inside = spectra.internals(part, cfg)
        # [C, p, p, d_mlp] -> [C, d_mlp, K]
        explained.append(spectra.frequency_explained_2d(inside["post"], dims=(1, 2)).float())
        patterns.append(inside["pattern"][..., 0].float())  # [C, p, p, heads]
    explained, patterns = torch.cat(explained), torch.cat(patterns)
    order = torch.argsort(explained[-1].argmax(-1), stable=True)  # by final best frequency
    # frequencies as rows 4 pixels high, so that 56 rows are visible beside 512 columns
    maps = [png_uri(grid[order].T.repeat_interleave(4, 0).numpy(), 0.0, 1.0) for grid in explained]
    heads = [
        [png_uri(grid[..., h].numpy(), 0.0, 1.0, cmap="magma") for h in range(cfg.n_heads)]
        for grid in patterns
    ]
    return steps, maps, heads


def explore(run_dir, run_id: str, measures_path, phases_path, chunk: int, out: Path) -> None:
    measures, phases = pd.read_parquet(measures_path), pd.read_parquet(phases_path)
    steps, maps, heads = checkpoint_images(Path(run_dir), chunk)
    if list(steps) != list(checkpoint_steps(measures, run_id)):
        raise ValueError(f"{run_dir}: checkpoints differ from the grokking measures of {run_id}")
    panels = [
        loss_panel(measures, phases, run_id),
        spectra_panel(measures, run_id, steps),
        images_panel(
            "neurons",
            "neurons: variance explained per frequency (rows k = 1.., by final cluster)",
            [[m] for m in maps],
            ["neurons (columns) x frequency (rows)"],
        ),
        images_panel(
            "heads",
            "attention from '=' to a, over (a, b)",
            heads,
            [f"head {h}" for h in range(len(heads[0]))],
        ),
    ]
    write_views(
        "circuits",
        "circuits of the grokked model (canonical run)",
        [view(f"{run_id} (canonical)", steps, panels)],
        out,
    )
