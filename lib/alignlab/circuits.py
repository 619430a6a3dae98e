"""The grokked modular-addition circuit, read off its checkpoints (Nanda et al. 2023, sections 4-5).

Measures (all batched over checkpoints; never a p^3 cube of basis functions):

- Neurons. Each MLP neuron's activation at '=' over all (a, b) pairs is a [p, p] grid. Its 2-D FFT
  gives, for every frequency k, the energy of the eight terms {1, cos, sin}(w_k a) x {1, cos,
  sin}(w_k b) other than the constant: the FFT bins (0, +-k), (+-k, 0), (+-k, +-k). The fraction
  of the neuron's variance (its energy without the constant) in the best frequency is
  `neuron_explained`; a neuron is *single-frequency* when that fraction is at least
  `explained_threshold` (0.85, as in the paper). A dead neuron (constant activation) explains 0.
  Clusters: how many single-frequency neurons have each best frequency.
- Attention heads. The pattern from '=' to position 0 as a [p, p] grid over (a, b) (the same 2-D
  measure as neurons), and the score to position 0, which depends on a only (a 1-D FFT).
- W_L = W_out @ W_U, [d_mlp, p], centred over the output c (softmax ignores a constant logit):
  singular values and the share of its squared Frobenius norm in the top 2 x n_key directions.
- Logits L[a, b, c], centred over c for each pair: the share of their variance explained by
  sum_k alpha_k cos(w_k (a + b - c)). These functions are orthogonal over (a, b, c) with squared
  norm p^3 / 2 and orthogonal to any function of (a, b) alone, so alpha_k follows from the
  diagonal sums G[s, c] (pairs with a + b = s): <L, f_k> = cos_k' G cos_k + sin_k' G sin_k.
  Also the 2-D Fourier spectrum over (a, b), summed over c.
- Ablations through TransformerLens hooks on the bridge (`run_with_hooks` on
  `blocks.0.mlp.hook_post` at '='): remove a key frequency's eight terms from every neuron's
  activation grid, remove all key frequencies, keep only them (plus the constant), remove all
  non-key frequencies (a control: should change little), mean-ablate the neurons that no
  frequency explains, and, as a control for that, as many randomly chosen single-frequency
  neurons. Loss (float64 CE at '=') and accuracy on the train and test splits.
  `transformer_lens.patching` was not used: its functions patch a clean run with a corrupted
  run's activations, and these interventions have no corrupted input.
- Controls: every measure, and the grokking progress measures, also on random-init models
  (`models.init_params`) measured against the trained run's key frequencies.

Tables are long and tidy: [run_id, step, measure, component, value]; the logits' spectrum and the
ablations have their own tidy tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alignlab import fourier
from alignlab.checkpoints import load_stack, load_weights, run_checkpoints
from alignlab.data import ModularDataset, load_dataset
from alignlab.measures import PairSplit, progress_measures, weight_l
from alignlab.models import ACTIVATIONS, ModelConfig, final_position_loss, init_params
from alignlab.provenance import config_hash

COLUMNS = ["run_id", "step", "measure", "component", "value"]
EXPLAINED_THRESHOLD = 0.85


# --------------------------------------------------------------------------------------------
# Which run to analyse


def canonical_run_id(grok_runs: dict[str, dict], canonical_seed: int) -> str:
    """The grokking run with the canonical seed and weight decay on (the run the paper reads)."""
    found = [
        rid
        for rid, run in sorted(grok_runs.items())
        if run["seed"] == canonical_seed and run["weight_decay"] > 0
    ]
    if not found:
        raise ValueError(f"no grokking run with seed {canonical_seed} and weight decay > 0")
    return found[0]


def random_init_run_id(model: ModelConfig, seed: int) -> str:
    return f"random_init-seed{seed}-{config_hash({'model': model.to_dict(), 'seed': seed})}"


# --------------------------------------------------------------------------------------------
# The model's internals at '=' for every pair, batched over checkpoints


def internals(params: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Activations at the '=' position for all p^2 pairs of stacked params [C, ...].

    Returns post [C, p, p, d_mlp] (MLP neurons after the activation), pattern [C, p, p, h, 3]
    (attention from '=' to positions a, b, '='), score0 [C, p, h] (pre-softmax score to position
    0, a function of a only) and logits [C, p, p, p]; axes a, b, (c). The same arithmetic as
    `models.FinalPositionTransformer`, written out so that the intermediate activations are
    available for whole checkpoint stacks at once.
    """
    p, h, dh = cfg.p, cfg.n_heads, cfg.d_head
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    W_Q, W_K = params["blocks.0.attn.W_Q"], params["blocks.0.attn.W_K"]
    W_V, W_O = params["blocks.0.attn.W_V"], params["blocks.0.attn.W_O"]
    x_eq = W_E[:, p] + W_pos[:, 2]  # [C, m]
    q = torch.einsum("cm,chmd->chd", x_eq, W_Q)
    xs = [W_E[:, :p] + W_pos[:, pos, None] for pos in (0, 1)]  # [C, p, m]
    scores = [torch.einsum("cpm,chmd,chd->cph", x, W_K, q) / math.sqrt(dh) for x in xs]
    score_eq = torch.einsum("cm,chmd,chd->ch", x_eq, W_K, q) / math.sqrt(dh)
    values = [torch.einsum("cpm,chmd->cphd", x, W_V) for x in xs]
    value_eq = torch.einsum("cm,chmd->chd", x_eq, W_V)
    n_c = x_eq.shape[0]
    grid = (n_c, p, p, h)
    pattern = torch.stack(
        [
            scores[0][:, :, None].expand(grid),
            scores[1][:, None].expand(grid),
            score_eq[:, None, None].expand(grid),
        ],
        dim=-1,
    ).softmax(dim=-1)
    if cfg.attn_rate != 1.0:
        pattern = cfg.attn_rate * pattern + (1.0 - cfg.attn_rate) / cfg.n_ctx
    z = (
        pattern[..., 0, None] * values[0][:, :, None]
        + pattern[..., 1, None] * values[1][:, None]
        + pattern[..., 2, None] * value_eq[:, None, None]
    )  # [C, p, p, h, dh]
    # Matmuls over the flattened pairs [C, p^2, .] (one bmm each, not p small ones).
    pairs = z.reshape(n_c, p * p, h * dh) @ W_O.reshape(n_c, h * dh, -1)
    resid_mid = x_eq[:, None] + pairs
    pre = resid_mid @ params["blocks.0.mlp.W_in"] + params["blocks.0.mlp.b_in"][:, None]
    post = ACTIVATIONS[cfg.act_fn](pre)
    resid = resid_mid + post @ params["blocks.0.mlp.W_out"] + params["blocks.0.mlp.b_out"][:, None]
    logits = (resid @ params["unembed.W_U"]).reshape(n_c, p, p, -1)
    post = post.reshape(n_c, p, p, -1)
    return {"post": post, "pattern": pattern, "score0": scores[0], "logits": logits}


# --------------------------------------------------------------------------------------------
# Fourier measures


def frequency_explained_2d(grids: torch.Tensor, dims: tuple[int, int] = (-2, -1)) -> torch.Tensor:
    """Fraction of each [p, p] grid's variance in {1, cos, sin}(w_k a) x {1, cos, sin}(w_k b).

    `grids` has the two token axes at `dims`; the result has them replaced by one trailing axis of
    the (p-1)/2 frequencies k = 1.. . Uses the 2-D FFT: those eight terms are exactly the bins
    (0, +-k), (+-k, 0), (+-k, +-k). A constant grid (zero variance) explains 0 everywhere.
    """
    x = grids.movedim(dims, (-2, -1)).contiguous()
    p = x.shape[-1]
    if x.shape[-2] != p:
        raise ValueError(f"expected square [p, p] grids, got {tuple(x.shape[-2:])}")
    k = torch.arange(1, fourier.n_frequencies(p) + 1)
    # rfft2 keeps the columns v = 0..(p-1)/2; the other half mirrors them (|F[-u, -v]| = |F[u, v]|
    # for real grids), so each frequency's energy is twice that of (0, k), (k, 0), (k, k), (-k, k).
    power = torch.fft.rfft2(x).abs().double().square()
    total = 2 * power.sum(dim=(-2, -1)) - power[..., 0].sum(-1) - power[..., 0, 0]
    energy = 2 * (power[..., 0, k] + power[..., k, 0] + power[..., k, k] + power[..., p - k, k])
    return _ratio(energy, total, power[..., 0, 0])


def frequency_explained_1d(series: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Fraction of each length-p series' variance in cos/sin(w_k x); the frequency axis is last."""
    x = series.double().movedim(dim, -1)
    p = x.shape[-1]
    k = torch.arange(1, fourier.n_frequencies(p) + 1)
    power = torch.fft.fft(x).abs().square()
    total = power.sum(dim=-1) - power[..., 0]
    return _ratio(power[..., k] + power[..., p - k], total, power[..., 0])


def _ratio(energy: torch.Tensor, total: torch.Tensor, mean_sq: torch.Tensor) -> torch.Tensor:
    """energy / total, and 0 where the variance `total` is negligible next to the squared mean
    `mean_sq` (same scale): a constant grid, whose FFT leaves only rounding noise off the constant.
    """
    ok = total > _CONSTANT_RTOL * (total + mean_sq)
    scale = total.clamp_min(torch.finfo(torch.float64).tiny).unsqueeze(-1)
    return torch.where(ok.unsqueeze(-1), energy / scale, torch.zeros_like(energy))


# Variance below this fraction of the mean square counts as a constant grid (float32 FFT rounding
# leaves about 1e-14 of the power off the constant).
_CONSTANT_RTOL = 1e-10


def best_frequency(explained: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(best frequency k, 1-based; its explained fraction) along the last axis."""
    value, index = explained.max(dim=-1)
    return index + 1, value


def wl_singular_values(W_L: torch.Tensor) -> torch.Tensor:
    """Singular values of W_L [..., d_mlp, p] after removing its mean over the output axis."""
    centred = W_L.double() - W_L.double().mean(dim=-1, keepdim=True)
    return torch.linalg.svdvals(centred)


def top_share(singular_values: torch.Tensor, n: int) -> torch.Tensor:
    """Share of the squared Frobenius norm in the top n singular directions."""
    sq = singular_values.double().square()
    return sq[..., :n].sum(-1) / sq.sum(-1).clamp_min(torch.finfo(torch.float64).tiny)


def _centred_logits(logits: torch.Tensor) -> torch.Tensor:
    """Logits [..., p, p, p] minus their mean over c (a per-pair constant that softmax ignores)."""
    logits = logits.double()
    return logits - logits.mean(dim=-1, keepdim=True)


def cos_sum_explained(logits: torch.Tensor) -> torch.Tensor:
    """Share of the (c-centred) logits' variance in alpha_k cos(w_k (a + b - c)), per k -> [..., K].

    logits [..., p, p, p] over (a, b, c). Per frequency, so the share of a set of frequencies is a
    sum (the functions are orthogonal). Built from the diagonal sums G[s, c]; no p^3 basis cube.
    """
    centred = _centred_logits(logits)
    p = centred.shape[-1]
    sums = fourier.diagonal_sums(centred)  # [..., s, c]
    basis, _ = fourier.fourier_basis(p)
    coeff = basis @ sums @ basis.T  # [..., j, j']
    rows = torch.arange(1, fourier.n_frequencies(p) + 1)
    cos, sin = 2 * rows - 1, 2 * rows
    # raw cos_k = sqrt(p / 2) * basis row: <L, f_k> = (p / 2) (coeff[cos, cos] + coeff[sin, sin])
    inner = (p / 2) * (coeff[..., cos, cos] + coeff[..., sin, sin])
    explained = inner.square() / (p**3 / 2)
    total = centred.square().sum(dim=(-3, -2, -1))
    return _ratio(explained, total, torch.zeros_like(total))


def logit_spectrum(logits: torch.Tensor) -> torch.Tensor:
    """Norm of each 2-D Fourier component (rows: basis over a, columns: over b) of the c-centred
    logits [p, p, p], summed in square over the outputs c -> [p, p]."""
    centred = _centred_logits(logits)
    basis, _ = fourier.fourier_basis(centred.shape[-1])
    coeff = torch.einsum("ia,abc,jb->ijc", basis, centred, basis)
    return coeff.square().sum(dim=-1).sqrt()


# --------------------------------------------------------------------------------------------
# Measures of a checkpoint stack


def neuron_summary(explained: torch.Tensor, threshold: float) -> dict[str, torch.Tensor]:
    """From explained [C, d_mlp, K]: best frequency and fraction per neuron, share of
    single-frequency neurons, cluster sizes [C, K] and the count of dead neurons."""
    freq, frac = best_frequency(explained)
    single = frac >= threshold
    n_freqs = explained.shape[-1]
    clusters = torch.stack(
        [((freq == k) & single).sum(-1) for k in range(1, n_freqs + 1)], dim=-1
    ).double()
    dead = (explained.sum(-1) == 0).sum(-1).double()
    return {
        "freq": freq,
        "frac": frac,
        "share": single.double().mean(-1),
        "clusters": clusters,
        "dead": dead,
    }


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


# --------------------------------------------------------------------------------------------
# Ablations through TransformerLens hooks


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
    single = neuron_frac >= threshold
    unexplained = torch.nonzero(~single).flatten()
    candidates = torch.nonzero(single).flatten()
    gen = torch.Generator().manual_seed(seed)
    n_random = min(len(unexplained), len(candidates))
    random_explained = candidates[torch.randperm(len(candidates), generator=gen)[:n_random]]
    rows = []
    baseline = {}
    for (name, freq), fn in interventions(p, key_freqs, unexplained, random_explained).items():
        hooks = []
        if fn is not None:

            def hook(act, hook, fn=fn):
                act = act.clone()
                grid = act[:, -1, :].reshape(p, p, -1)
                act[:, -1, :] = fn(grid.double()).to(act.dtype).reshape(p * p, -1)
                return act

            hooks = [("blocks.0.mlp.hook_post", hook)]
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
                    "n_neurons": {
                        "mean_ablate_unexplained": len(unexplained),
                        "mean_ablate_random_explained": len(random_explained),
                    }.get(name, 0),
                    "split": split_name,
                    "loss": loss,
                    "accuracy": acc,
                    "delta_loss": loss - baseline[split_name],
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Rule entry points


def _model_rows(run_id: str, label: str, seed: int, cfg: ModelConfig, source: str) -> dict:
    row = {"run_id": run_id, "model": label, "seed": seed, "source_run": source}
    return row | {"canonical": run_id == source, **cfg.to_dict()}


def _final_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Tensor], int, dict]:
    return load_weights(run_checkpoints(run_dir)[-1][1])  # checked against the train log


def other_seed_measures(run_dirs, key_freq_paths, seeds, threshold: float):
    """Final-checkpoint circuit measures of the other seeds' grokking runs (each with its own key
    frequencies), so the trained-model markers rest on every seed: (measure frames, run rows)."""
    frames, runs = [], []
    for run_dir, key_path, seed in zip(run_dirs, key_freq_paths, seeds, strict=True):
        run_id = Path(run_dir).name
        key_freqs = json.loads(Path(key_path).read_text())["key_frequencies"]
        params, step, model = _final_checkpoint(run_dir)
        cfg = ModelConfig(**model)
        stacked = {name: value[None] for name, value in params.items()}
        measures, _ = stack_measures([step], stacked, cfg, key_freqs, threshold)
        frames.append(_long(run_id, [step], measures))
        runs.append(_model_rows(run_id, "trained", int(seed), cfg, run_id) | {"canonical": False})
        runs[-1]["key_freqs"] = ", ".join(map(str, key_freqs))
    return frames, runs


def _stride(steps: list[int], stride: int) -> list[int]:
    """Every `stride`-th checkpoint index, always including the last."""
    picked = list(range(0, len(steps), stride))
    if picked[-1] != len(steps) - 1:
        picked.append(len(steps) - 1)
    return picked


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
        run_id = random_init_run_id(cfg, seed)
        runs.append(_model_rows(run_id, "random_init", seed, cfg, source))
        init = init_params(cfg, seed)
        stacked = {name: value[None] for name, value in init.items()}
        measures, last = stack_measures([0], stacked, cfg, key_freqs, threshold)
        frames += [
            _long(run_id, [0], measures),
            _unit_rows(run_id, 0, last),
            _progress_rows(run_id, 0, init, cfg, dataset, key_freqs),
        ]
        spectra.append(_spectrum_rows(run_id, 0, last["logits"]))
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
    params, step, model = _final_checkpoint(source_run_dir)
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


def _value(measures: pd.DataFrame, run_id: str, measure: str, component: str = "") -> float:
    """The measure at the run's last measured step; NaN where the run has no such measure."""
    rows = measures[
        (measures.run_id == run_id)
        & (measures.measure == measure)
        & (measures.component == component)
    ]
    return float(rows.sort_values("step").value.iloc[-1]) if len(rows) else math.nan


def _ablation(ablations: pd.DataFrame, run_id: str, name: str, split: str, column: str) -> float:
    rows = ablations[
        (ablations.run_id == run_id)
        & (ablations.intervention == name)
        & (ablations.frequency == "")
        & (ablations.split == split)
    ]
    return float(rows[column].iloc[0]) if len(rows) else math.nan  # ablated: canonical only


def run_markers(measures: pd.DataFrame, ablations: pd.DataFrame, run_id: str) -> dict[str, float]:
    """Per-run marker values (final checkpoint of the trained run, or the random init)."""
    return {
        "single_freq_share": _value(measures, run_id, "neuron_single_freq_share"),
        "neuron_mean_explained": _value(measures, run_id, "neuron_mean_explained"),
        "W_L_top_share": _value(measures, run_id, "W_L_top_share"),
        "logit_cos_share": _value(measures, run_id, "logit_cos_share", "key"),
        "keep_only_test_delta": _ablation(
            ablations, run_id, "keep_only_key_freqs", "test", "delta_loss"
        ),
        "remove_key_train_delta": _ablation(
            ablations, run_id, "remove_all_key_freqs", "train", "delta_loss"
        ),
        "remove_non_key_test_delta": _ablation(
            ablations, run_id, "remove_non_key_freqs", "test", "delta_loss"
        ),
        "mean_ablate_unexplained_test_delta": _ablation(
            ablations, run_id, "mean_ablate_unexplained", "test", "delta_loss"
        ),
        "test_loss": _ablation(ablations, run_id, "none", "test", "loss"),
    }


def _by_seed(runs: pd.DataFrame, values: dict, model: str, name: str) -> str:
    """Values of one kind of run as "seed 0: 0.81; seed 1: 0.84", for the text."""
    chosen = runs[runs.model == model].sort_values("seed")
    return "; ".join(
        f"seed {int(seed)}: {values[rid][name]:.2f}"
        for rid, seed in zip(chosen.run_id, chosen.seed, strict=True)
    )


def summarize(
    measures_path, ablations_path, runs_path, threshold: float, out_markers, out_numbers
) -> None:
    """markers.parquet (run_id, marker, value) and numbers.json for the paper."""
    measures, ablations = pd.read_parquet(measures_path), pd.read_parquet(ablations_path)
    runs = pd.read_parquet(runs_path)
    values = {rid: run_markers(measures, ablations, rid) for rid in runs.run_id}
    rows = [
        {"run_id": rid, "marker": k, "value": v} for rid, d in values.items() for k, v in d.items()
    ]
    pd.DataFrame(rows, columns=["run_id", "marker", "value"]).to_parquet(out_markers, index=False)

    trained = runs[runs.canonical].iloc[0]
    control = runs[runs.model == "random_init"].iloc[0]
    ours, base = values[trained.run_id], values[control.run_id]
    neurons = measures[(measures.run_id == trained.run_id) & (measures.measure == "neuron_freq")]
    explained = measures[
        (measures.run_id == trained.run_id) & (measures.measure == "neuron_explained")
    ]
    clusters = measures[
        (measures.run_id == trained.run_id)
        & (measures.measure == "neuron_cluster_size")
        & (measures.step == measures.step[measures.run_id == trained.run_id].max())
        & (measures.component != "key")
        & (measures.value > 0)
    ]
    heads = measures[
        (measures.run_id == trained.run_id)
        & (measures.measure == "head_pattern_explained")
        & (measures.step == explained.step.max())
    ]
    head_freqs = measures[
        (measures.run_id == trained.run_id)
        & (measures.measure == "head_pattern_freq")
        & (measures.step == explained.step.max())
    ]
    key_list = [int(k) for k in str(trained.key_freqs).split(",")]
    n_key = len(key_list)
    result = {
        "threshold_pct": round(100 * float(threshold)),
        "n_neurons": len(neurons),
        "n_key_freqs": n_key,
        "n_directions": 2 * n_key,
        "key_freqs": str(trained.key_freqs),
        "single_freq_share": ours["single_freq_share"],
        "single_freq_share_random": base["single_freq_share"],
        "n_clusters": len(clusters),
        "n_neurons_in_key_clusters": int(
            _value(measures, trained.run_id, "neuron_cluster_size", "key")
        ),
        "n_single_freq_neurons": int((explained.value >= threshold).sum()),
        "head_mean_explained": float(heads.value.mean()),
        "n_heads": len(heads),
        "n_heads_on_key_freqs": int(head_freqs.value.astype(int).isin(key_list).sum()),
        "W_L_top_share": ours["W_L_top_share"],
        "W_L_rest_share": 1.0 - ours["W_L_top_share"],
        "W_L_top_share_random": base["W_L_top_share"],
        "logit_cos_share": ours["logit_cos_share"],
        "logit_cos_share_random": base["logit_cos_share"],
        "test_loss": ours["test_loss"],
        "keep_only_test_delta": ours["keep_only_test_delta"],
        "remove_key_train_delta": ours["remove_key_train_delta"],
        "remove_non_key_test_delta": ours["remove_non_key_test_delta"],
        "mean_ablate_unexplained_test_delta": ours["mean_ablate_unexplained_test_delta"],
        "final_step": int(explained.step.max()),
        "n_seeds": int((runs.model == "trained").sum()),
    }
    for name in ("single_freq_share", "W_L_top_share"):
        result[f"{name}_by_seed"] = _by_seed(runs, values, "trained", name)
        result[f"{name}_by_random_init"] = _by_seed(runs, values, "random_init", name)
    Path(out_numbers).write_text(json.dumps(result, indent=2) + "\n")
