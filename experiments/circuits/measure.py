"""The circuits rule steps that measure checkpoints: every Fourier measure over training (the
canonical run) and at the end of every seed, plus random-init controls measured against the
trained run's key frequencies (`models.init_params`), and the grokking progress measures of the
final checkpoint and of the controls.

Tables are long and tidy: [run_id, step, measure, component, value]; the logits' spectrum has its
own tidy table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alignlab import fourier
from alignlab.checkpoints import load_stack, load_weights, run_checkpoints
from alignlab.data import load_dataset
from alignlab.measures import progress_measures, weight_l
from alignlab.models import ModelConfig, init_params
from alignlab.provenance import config_hash
from experiments.circuits.spectra import (
    best_frequency,
    cos_sum_explained,
    frequency_explained_1d,
    frequency_explained_2d,
    internals,
    logit_spectrum,
    neuron_summary,
    top_share,
    wl_singular_values,
)

COLUMNS = ["run_id", "step", "measure", "component", "value"]


# --------------------------------------------------------------------------------------------
# Which run to analyse


def canonical_run_id(grok_runs: dict[str, dict], roles: dict[str, str], canonical_seed: int) -> str:
    """The grokking run the paper reads: role canonical, with the canonical seed."""
    found = [
        rid
        for rid, run in sorted(grok_runs.items())
        if run["seed"] == canonical_seed and roles[rid] == "canonical"
    ]
    if not found:
        raise ValueError(f"no canonical grokking run with seed {canonical_seed}")
    return found[0]


def random_init_run_id(model: ModelConfig, seed: int) -> str:
    return f"random_init-seed{seed}-{config_hash({'model': model.to_dict(), 'seed': seed})}"


def stack_measures(
    steps: Sequence[int],
    params: dict[str, torch.Tensor],
    cfg: ModelConfig,
    key_freqs: Sequence[int],
    threshold: float,
    chunk: int = 4,
) -> tuple[dict[tuple[str, str], torch.Tensor], dict[str, torch.Tensor]]:
    """Per-checkpoint measures of stacked params [C, ...] -> ({(measure, component): [C]}, per-unit
    tensors for the last checkpoint of the stack: neuron freq/frac, W_L singular values, logits)."""
    n_key = len(key_freqs)
    keys = torch.tensor([k - 1 for k in key_freqs], dtype=torch.long)
    collected: dict[tuple[str, str], list[torch.Tensor]] = {}
    last: dict[str, torch.Tensor] = {}
    for start in range(0, len(steps), chunk):
        part = {name: value[start : start + chunk] for name, value in params.items()}
        with torch.no_grad():
            inner = internals(part, cfg)
        out: dict[tuple[str, str], torch.Tensor] = {}
        explained = frequency_explained_2d(inner["post"], dims=(1, 2))  # [C, d_mlp, K]
        neurons = neuron_summary(explained, threshold)
        out[("neuron_single_freq_share", "")] = neurons["share"]
        out[("neuron_mean_explained", "")] = neurons["frac"].mean(-1)
        out[("neuron_dead", "")] = neurons["dead"]
        for k in range(1, explained.shape[-1] + 1):
            out[("neuron_cluster_size", str(k))] = neurons["clusters"][:, k - 1]
        out[("neuron_cluster_size", "key")] = neurons["clusters"][:, keys].sum(-1)
        # attention heads: pattern to position 0 over (a, b); score to position 0 over a
        head_2d = frequency_explained_2d(inner["pattern"][..., 0], dims=(1, 2))  # [C, h, K]
        head_1d = frequency_explained_1d(inner["score0"], dim=1)  # [C, h, K]
        for name, table in (("head_pattern", head_2d), ("head_score", head_1d)):
            freq, frac = best_frequency(table)
            for head in range(cfg.n_heads):
                out[(f"{name}_freq", str(head))] = freq[:, head].double()
                out[(f"{name}_explained", str(head))] = frac[:, head]
        svals = wl_singular_values(weight_l(part))
        out[("W_L_top_share", "")] = top_share(svals, 2 * n_key)
        logit_grid = inner["logits"]
        cos_share = cos_sum_explained(logit_grid)  # [C, K]
        out[("logit_cos_share", "key")] = cos_share[:, keys].sum(-1)
        out[("logit_cos_share", "all")] = cos_share.sum(-1)
        for key, value in out.items():
            collected.setdefault(key, []).append(value.double())
        last = {
            "neuron_freq": neurons["freq"][-1],
            "neuron_frac": neurons["frac"][-1],
            "W_L_singular_values": svals[-1],
            "logit_cos_share": cos_share[-1],
            "logits": logit_grid[-1],
        }
    return {key: torch.cat(values) for key, values in collected.items()}, last


def _long(run_id: str, steps: Sequence[int], measures: dict) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "run_id": run_id,
                "step": np.asarray(steps, dtype=np.int64),
                "measure": measure,
                "component": component,
                "value": values.double().numpy(),
            }
        )
        for (measure, component), values in measures.items()
    ]
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def _unit_rows(run_id: str, step: int, last: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Per-neuron, per-singular-value and per-frequency rows of one checkpoint."""
    rows = {
        "neuron_freq": last["neuron_freq"].double(),
        "neuron_explained": last["neuron_frac"],
        "W_L_singular_value": last["W_L_singular_values"],
    }
    frames = [
        pd.DataFrame(
            {
                "run_id": run_id,
                "step": step,
                "measure": measure,
                "component": [str(i) for i in range(len(values))],
                "value": values.numpy(),
            }
        )
        for measure, values in rows.items()
    ]
    share = last["logit_cos_share"]
    frames.append(
        pd.DataFrame(
            {
                "run_id": run_id,
                "step": step,
                "measure": "logit_cos_share",
                "component": [str(k) for k in range(1, len(share) + 1)],
                "value": share.numpy(),
            }
        )
    )
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def _spectrum_rows(run_id: str, step: int, logits: torch.Tensor) -> pd.DataFrame:
    spectrum = logit_spectrum(logits)
    labels = fourier.component_labels(spectrum.shape[-1])
    i, j = np.meshgrid(np.arange(len(labels)), np.arange(len(labels)), indexing="ij")
    return pd.DataFrame(
        {
            "run_id": run_id,
            "step": step,
            "a_component": np.asarray(labels)[i.ravel()],
            "b_component": np.asarray(labels)[j.ravel()],
            "a_index": i.ravel(),
            "b_index": j.ravel(),
            "value": spectrum.numpy().ravel(),
        }
    )


def _progress_rows(run_id, step, params, cfg, dataset, key_freqs) -> pd.DataFrame:
    """The grokking progress measures of one checkpoint (trained or random init)."""
    stacked = {name: value[None] for name, value in params.items()}
    table = progress_measures([step], stacked, cfg, dataset, key_freqs=key_freqs)
    return table.assign(run_id=run_id)[COLUMNS]


def _model_rows(run_id: str, label: str, seed: int, cfg: ModelConfig, source: str) -> dict:
    row = {"run_id": run_id, "model": label, "seed": seed, "source_run": source}
    return row | {"canonical": run_id == source, **cfg.to_dict()}


def final_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Tensor], int, dict]:
    return load_weights(run_checkpoints(run_dir)[-1][1])  # checked against the train log


def other_seed_measures(run_dirs, key_freq_paths, seeds, threshold: float):
    """Final-checkpoint circuit measures of the other seeds' grokking runs (each with its own key
    frequencies) and their per-neuron, per-singular-value and per-frequency rows, so the
    trained-model markers rest on every seed: (measure frames, run rows)."""
    frames, runs = [], []
    for run_dir, key_path, seed in zip(run_dirs, key_freq_paths, seeds, strict=True):
        run_id = Path(run_dir).name
        key_freqs = json.loads(Path(key_path).read_text())["key_frequencies"]
        params, step, model = final_checkpoint(run_dir)
        cfg = ModelConfig(**model)
        stacked = {name: value[None] for name, value in params.items()}
        measures, last = stack_measures([step], stacked, cfg, key_freqs, threshold)
        # per-neuron rows too: experiments/circuit_discovery compares every seed's neurons
        frames += [_long(run_id, [step], measures), _unit_rows(run_id, step, last)]
        runs.append(_model_rows(run_id, "trained", int(seed), cfg, run_id) | {"canonical": False})
        runs[-1]["key_freqs"] = ", ".join(map(str, key_freqs))
    return frames, runs


def _stride(steps: list[int], stride: int) -> list[int]:
    """Every `stride`-th checkpoint index, always including the last."""
    picked = list(range(0, len(steps), stride))
    if picked[-1] != len(steps) - 1:
        picked.append(len(steps) - 1)
    return picked


def _random_init_control(
    seed: int,
    cfg: ModelConfig,
    source: str,
    dataset,
    key_freqs: list[int],
    threshold: float,
) -> tuple[dict, list[pd.DataFrame], pd.DataFrame]:
    """One random-init control (step 0 of a fresh model): its runs row, its measure frames and
    its logit spectrum, measured exactly as the trained run's final checkpoint."""
    run_id = random_init_run_id(cfg, seed)
    run = _model_rows(run_id, "random_init", seed, cfg, source)
    init = init_params(cfg, seed)
    stacked = {name: value[None] for name, value in init.items()}
    measures, last = stack_measures([0], stacked, cfg, key_freqs, threshold)
    frames = [
        _long(run_id, [0], measures),
        _unit_rows(run_id, 0, last),
        _progress_rows(run_id, 0, init, cfg, dataset, key_freqs),
    ]
    return run, frames, _spectrum_rows(run_id, 0, last["logits"])


def measure_circuits(
    source_run_dir: Path,
    dataset_path: Path,
    key_freqs_path: Path,
    analysis: dict,
    out_measures: Path,
    out_spectrum: Path,
    out_runs: Path,
    other_seeds: dict | None = None,
) -> None:
    """Every circuit measure over training (canonical run) and at the end, plus random-init
    controls; the grokking progress measures of the final checkpoint and of the controls.
    `other_seeds` ({"run_dirs", "key_freqs", "seeds"}): the other seeds' final checkpoints."""
    source_run_dir = Path(source_run_dir)
    source = source_run_dir.name
    threshold = float(analysis["explained_threshold"])
    key_freqs = json.loads(Path(key_freqs_path).read_text())["key_frequencies"]
    dataset = load_dataset(dataset_path)
    steps, params, model = load_stack(source_run_dir / "checkpoints")
    cfg = ModelConfig(**model)
    picked = _stride(steps, int(analysis.get("checkpoint_stride", 1)))
    steps = [steps[i] for i in picked]
    params = {name: value[picked] for name, value in params.items()}
    print(f"circuits: {source}, {len(steps)} checkpoints, key frequencies {key_freqs}")

    frames, spectra = [], []
    runs = [_model_rows(source, "trained", int(analysis["canonical_seed"]), cfg, source)]
    measures, last = stack_measures(
        steps, params, cfg, key_freqs, threshold, int(analysis.get("chunk", 4))
    )
    final_params = {name: value[-1] for name, value in params.items()}
    frames += [
        _long(source, steps, measures),
        _unit_rows(source, steps[-1], last),
        _progress_rows(source, steps[-1], final_params, cfg, dataset, key_freqs),
    ]
    spectra.append(_spectrum_rows(source, steps[-1], last["logits"]))
    for seed in analysis["random_init_seeds"]:
        run, control_frames, spectrum = _random_init_control(
            seed, cfg, source, dataset, key_freqs, threshold
        )
        runs.append(run)
        frames += control_frames
        spectra.append(spectrum)
    meta = pd.DataFrame(runs).assign(key_freqs=", ".join(map(str, key_freqs)))
    if other_seeds:
        more, more_runs = other_seed_measures(
            other_seeds["run_dirs"], other_seeds["key_freqs"], other_seeds["seeds"], threshold
        )
        frames += more
        meta = pd.concat([meta, pd.DataFrame(more_runs)], ignore_index=True)
    table = pd.concat(frames, ignore_index=True)
    table.attrs = {}
    table.to_parquet(out_measures, index=False)
    pd.concat(spectra, ignore_index=True).to_parquet(out_spectrum, index=False)
    meta.to_parquet(out_runs, index=False)
