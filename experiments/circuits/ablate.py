"""Ablations of the grokked circuit through TransformerLens hooks on the bridge (`run_with_hooks`
on `blocks.0.mlp.hook_post` at '='): remove a key frequency's eight terms from every neuron's
activation grid, remove all key frequencies, keep only them (plus the constant), remove all non-key
frequencies (a control: should change little), mean-ablate the neurons that no frequency explains,
and, as a control for that, as many randomly chosen single-frequency neurons. Loss (float64 CE at
'=') and accuracy on the train and test splits.

`transformer_lens.patching` was not used: its functions patch a clean run with a corrupted run's
activations, and these interventions have no corrupted input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

from alignlab import fourier
from alignlab.data import ModularDataset, load_dataset
from alignlab.measures import PairSplit
from alignlab.models import ModelConfig, final_position_loss, init_params
from experiments.circuits.measure import final_checkpoint, random_init_run_id
from experiments.circuits.spectra import best_frequency, frequency_explained_2d, internals


def _mask_2d(p: int, freqs: Sequence[int], constant: bool) -> torch.Tensor:
    """[p, p] mask over the 2-D real Fourier basis: the {1, cos, sin} x {1, cos, sin} terms of
    each frequency (their constant x constant term only if `constant`)."""
    mask = torch.zeros(p, p, dtype=torch.bool)
    for k in freqs:
        rows = torch.tensor(fourier.component_indices([k], constant=True))
        mask[rows[:, None], rows[None, :]] = True
    mask[0, 0] = constant
    return mask


def project_grid(grid: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Project [p, p, n] grids onto the 2-D Fourier terms selected by mask [p, p]."""
    basis, _ = fourier.fourier_basis(grid.shape[0])
    basis = basis.to(grid.dtype)
    coeff = torch.einsum("ia,abn,jb->ijn", basis, grid, basis)
    coeff = coeff * mask.to(grid.dtype)[..., None]
    return torch.einsum("ia,ijn,jb->abn", basis, coeff, basis)


def interventions(
    p: int, key_freqs: Sequence[int], unexplained: torch.Tensor, random_explained: torch.Tensor
) -> dict[tuple[str, str], Callable[[torch.Tensor], torch.Tensor] | None]:
    """(intervention, frequency) -> a function of the neuron grid [p, p, d_mlp] (None: baseline)."""
    n_freqs = fourier.n_frequencies(p)
    non_key = [k for k in range(1, n_freqs + 1) if k not in set(key_freqs)]

    def remove(freqs):
        mask = _mask_2d(p, freqs, constant=False)
        return lambda grid: grid - project_grid(grid, mask)

    def keep(freqs):
        mask = _mask_2d(p, freqs, constant=True)
        return lambda grid: project_grid(grid, mask)

    def mean_ablate(neurons):
        def fn(grid):
            out = grid.clone()
            out[:, :, neurons] = grid[:, :, neurons].mean(dim=(0, 1), keepdim=True)
            return out

        return fn

    table: dict[tuple[str, str], Callable | None] = {("none", ""): None}
    for k in key_freqs:
        table[("remove_key_freq", str(k))] = remove([k])
    table[("remove_all_key_freqs", "")] = remove(key_freqs)
    table[("keep_only_key_freqs", "")] = keep(key_freqs)
    table[("remove_non_key_freqs", "")] = remove(non_key)
    table[("mean_ablate_unexplained", "")] = mean_ablate(unexplained)
    table[("mean_ablate_random_explained", "")] = mean_ablate(random_explained)
    return table


def _neuron_groups(
    neuron_frac: torch.Tensor, threshold: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The neurons no single frequency explains, and as many randomly chosen explained ones (the
    control for mean-ablating the unexplained: same count, seeded)."""
    single = neuron_frac >= threshold
    unexplained = torch.nonzero(~single).flatten()
    candidates = torch.nonzero(single).flatten()
    gen = torch.Generator().manual_seed(seed)
    n_random = min(len(unexplained), len(candidates))
    random_explained = candidates[torch.randperm(len(candidates), generator=gen)[:n_random]]
    return unexplained, random_explained


def _final_position_hooks(p: int, fn: Callable[[torch.Tensor], torch.Tensor] | None) -> list:
    """Forward hooks that rewrite blocks.0.mlp.hook_post at '=' as a [p, p, d_mlp] grid (in
    float64, so the Fourier projections lose nothing); none for the baseline."""
    if fn is None:
        return []

    def hook(act, hook):
        act = act.clone()
        grid = act[:, -1, :].reshape(p, p, -1)
        act[:, -1, :] = fn(grid.double()).to(act.dtype).reshape(p * p, -1)
        return act

    return [("blocks.0.mlp.hook_post", hook)]


def ablation_table(
    run_id: str,
    step: int,
    params: dict[str, torch.Tensor],
    cfg: ModelConfig,
    dataset: ModularDataset,
    key_freqs: Sequence[int],
    neuron_frac: torch.Tensor,
    threshold: float,
    seed: int = 0,
) -> pd.DataFrame:
    """Loss and accuracy (train / test) under each intervention on the MLP neurons at '='.

    Runs the TransformerLens bridge with a hook on blocks.0.mlp.hook_post that rewrites the
    final position's activations, viewed as [p, p, d_mlp] grids over all pairs (a-major).
    """
    from alignlab.bridge import to_bridge, tokens

    p = cfg.p
    split = PairSplit.from_dataset(dataset)
    bridge = to_bridge(params, cfg)
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    toks = tokens(a, b, p)
    unexplained, random_explained = _neuron_groups(neuron_frac, threshold, seed)
    n_neurons = {
        "mean_ablate_unexplained": len(unexplained),
        "mean_ablate_random_explained": len(random_explained),
    }
    rows = []
    baseline = {}  # split -> loss with no intervention; the first entry of the table
    for (name, freq), fn in interventions(p, key_freqs, unexplained, random_explained).items():
        hooks = _final_position_hooks(p, fn)
        with torch.no_grad():
            logits = bridge.run_with_hooks(toks, return_type="logits", fwd_hooks=hooks)[:, -1]
        for split_name, index, labels in (
            ("train", split.train_index, split.train_labels),
            ("test", split.test_index, split.test_labels),
        ):
            loss = float(final_position_loss(logits[index], labels))
            acc = float((logits[index].argmax(-1) == labels).double().mean())
            if fn is None:
                baseline[split_name] = loss
            rows.append(
                {
                    "run_id": run_id,
                    "step": step,
                    "intervention": name,
                    "frequency": freq,
                    "n_neurons": n_neurons.get(name, 0),
                    "split": split_name,
                    "loss": loss,
                    "accuracy": acc,
                    "delta_loss": loss - baseline[split_name],
                }
            )
    return pd.DataFrame(rows)


def ablate_circuits(
    source_run_dir: Path,
    dataset_path: Path,
    key_freqs_path: Path,
    analysis: dict,
    out: Path,
) -> None:
    """The ablation table of the final checkpoint and of the random-init controls."""
    source_run_dir = Path(source_run_dir)
    threshold = float(analysis["explained_threshold"])
    key_freqs = json.loads(Path(key_freqs_path).read_text())["key_frequencies"]
    dataset = load_dataset(dataset_path)
    params, step, model = final_checkpoint(source_run_dir)
    cfg = ModelConfig(**model)
    models = [(source_run_dir.name, step, params)]
    models += [
        (random_init_run_id(cfg, seed), 0, init_params(cfg, seed))
        for seed in analysis["random_init_seeds"]
    ]
    frames = []
    for run_id, model_step, model_params in models:
        stacked = {name: value[None] for name, value in model_params.items()}
        with torch.no_grad():
            post = internals(stacked, cfg)["post"]
        frac = best_frequency(frequency_explained_2d(post, dims=(1, 2)))[1][0]
        table = ablation_table(
            run_id, model_step, model_params, cfg, dataset, key_freqs, frac, threshold
        )
        print(table[["intervention", "frequency", "split", "loss", "delta_loss"]].to_string())
        frames.append(table)
    pd.concat(frames, ignore_index=True).to_parquet(out, index=False)
