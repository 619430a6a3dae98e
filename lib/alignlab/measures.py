"""Progress measures of Nanda et al. 2023 for every checkpoint of a modular-addition run.

`progress_measures` returns a tidy long table [step, measure, component, value]:

    train_loss, test_loss, train_acc, test_acc   float64 CE / accuracy of the final-position logits
    restricted_loss   logits projected onto the constant + cos/sin(w_k (a+b)) of the key
                      frequencies; loss on the TEST split (the TransformerLens demo's choice; the
                      released code used all pairs)
    excluded_loss     logits minus their cos/sin(w_k (a+b)) components (constant kept); loss on
                      the TRAIN split; component "all" (every key frequency together) and
                      "k=<k>" (each alone)
    gini_W_E, gini_W_L            Gini of the p Fourier-component norms of W_E (input tokens,
                                  '=' row dropped) and of W_L = W_out @ W_U (output axis c)
    fourier_norm_W_E, fourier_norm_W_L   per frequency, component "<k>"
    n_key_freqs       size of this checkpoint's own key-frequency set (W_L, same rule)
    sum_sq_weights    sum of squares of every parameter

Key frequencies come from W_L's output-axis spectrum at the final checkpoint (the largest step),
and restricted / excluded loss use that one set at every checkpoint, as the paper does. W_L rather
than W_E because the restricted and excluded losses act on the logits, and W_L is exactly what
each neuron writes to them: W_E can carry a frequency the model never uses for its output
(Nanda et al.'s canonical seed has 6 non-negligible W_E frequencies but 5 key ones), and its
spectrum has a heavier tail (see `fourier.key_frequency_mask` for the threshold and a measured
example). The threshold is `key_freq_threshold`, a parameter for the experiment's config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch.func import functional_call

from alignlab import fourier
from alignlab.data import ModularDataset
from alignlab.models import FinalPositionTransformer, ModelConfig

COLUMNS = ["step", "measure", "component", "value"]
Measures = dict[tuple[str, str], torch.Tensor]  # (measure, component) -> values [checkpoints]


@dataclass(frozen=True)
class PairSplit:
    """Where the train and test pairs sit among all p^2 pairs (a-major), and their labels."""

    train_index: torch.Tensor
    train_labels: torch.Tensor
    test_index: torch.Tensor
    test_labels: torch.Tensor

    @staticmethod
    def from_dataset(dataset: ModularDataset) -> PairSplit:
        if dataset.op != "add":
            raise ValueError(f"progress measures assume op 'add' (a + b mod p), got {dataset.op!r}")
        p = dataset.p
        if not torch.equal(dataset.c, (dataset.a + dataset.b) % p):
            raise ValueError("dataset labels are not (a + b) mod p")
        index = dataset.a * p + dataset.b
        train, test = dataset.is_train, ~dataset.is_train
        return PairSplit(index[train], dataset.c[train], index[test], dataset.c[test])


def weight_l(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """W_L = W_out @ W_U, [..., d_mlp, p]: each neuron's direct effect on the logits."""
    return params["blocks.0.mlp.W_out"].double() @ params["unembed.W_U"].double()


def final_key_frequencies(
    steps: Sequence[int],
    stacked_params: dict[str, torch.Tensor],
    threshold: float = fourier.KEY_FREQ_THRESHOLD,
) -> list[int]:
    """Key frequencies of the final (largest-step) checkpoint, from W_L's output-axis spectrum."""
    last = max(range(len(steps)), key=lambda i: steps[i])
    W_L = weight_l({name: value[last] for name, value in stacked_params.items()})
    spectrum = fourier.frequency_norms(fourier.component_norms(W_L, axis=-1))
    return fourier.key_frequencies(spectrum, threshold)


def weight_measures(params: dict[str, torch.Tensor], p: int, threshold: float) -> Measures:
    """Gini, per-frequency norms, key-frequency count and weight norm of stacked params [C, ...]."""
    out: Measures = {}
    spectra = {
        "W_E": fourier.component_norms(params["embed.W_E"][:, :p], axis=1, batch_dims=1),
        "W_L": fourier.component_norms(weight_l(params), axis=-1, batch_dims=1),
    }
    for name, comp_norms in spectra.items():
        out[(f"gini_{name}", "")] = fourier.gini(comp_norms)
        freq_norms = fourier.frequency_norms(comp_norms)
        for k in range(1, freq_norms.shape[-1] + 1):
            out[(f"fourier_norm_{name}", str(k))] = freq_norms[:, k - 1]
    w_l_freqs = fourier.frequency_norms(spectra["W_L"])
    out[("n_key_freqs", "")] = fourier.key_frequency_mask(w_l_freqs, threshold).sum(-1).double()
    out[("sum_sq_weights", "")] = sum((v.double() ** 2).flatten(1).sum(-1) for v in params.values())
    return out


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean float64 cross-entropy per checkpoint of logits [C, n, p] -> [C]."""
    log_probs = logits.double().log_softmax(dim=-1)
    picked = log_probs.gather(-1, labels.expand(logits.shape[0], -1).unsqueeze(-1))
    return -picked.squeeze(-1).mean(dim=-1)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=-1) == labels).double().mean(dim=-1)


def _restricted_loss(
    coeffs: torch.Tensor, key_freqs: Sequence[int], split: PairSplit
) -> torch.Tensor:
    """Test loss of the logits projected onto the constant + cos/sin(w_k(a+b)), k in key_freqs.

    The projection is a table T[s, c] over s = (a + b) mod p, so its log-sum-exp is taken once per
    s rather than once per test pair.
    """
    table = fourier.sum_component_table(coeffs, fourier.component_indices(key_freqs, True))
    sums = fourier.sum_index(coeffs.shape[-1])[split.test_index]
    label_logit = table[:, sums, split.test_labels]  # [C, n_test]
    return (table.logsumexp(dim=-1)[:, sums] - label_logit).mean(dim=-1)


def _pairs_by_sum(p: int) -> torch.Tensor:
    """[s, a] -> index a * p + b of the pair with b = (s - a) mod p."""
    s, a = torch.arange(p).view(p, 1), torch.arange(p).view(1, p)
    return a * p + (s - a) % p


# Above this range of a removed table over c, exp(-table) could underflow in float64.
_MAX_TABLE_RANGE = 600.0


def _logsumexp_minus_tables(logits: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """logsumexp_c(L[C, pair, c] - tables[C, r, s(pair), c]) -> [C, r, p^2], for every table r.

    exp(L - T) = exp(L) * exp(-T), and every pair with the same s = (a + b) mod p shares the row
    T[s], so all r tables cost one batched matmul per s instead of r float64 log-softmaxes over
    all pairs. Both factors are shifted by their row maxima; the result is exact in float64 unless
    a table spans more than `_MAX_TABLE_RANGE` (then it falls back to the direct form).
    """
    p = logits.shape[-1]
    neg = -tables
    if (neg.amax(-1) - neg.amin(-1)).max() > _MAX_TABLE_RANGE:
        sums = fourier.sum_index(p)
        return torch.stack([(logits - t[:, sums]).logsumexp(-1) for t in tables.unbind(1)], 1)
    by_sum = _pairs_by_sum(p)
    row_max = logits.amax(dim=-1, keepdim=True)
    exp_logits = (logits - row_max).exp()[:, by_sum]  # [C, s, a, c]
    table_max = neg.amax(dim=-1, keepdim=True)  # [C, r, s, 1]
    exp_tables = (neg - table_max).exp().permute(0, 2, 3, 1)  # [C, s, c, r]
    lse = (exp_logits @ exp_tables).log() + row_max[:, by_sum] + table_max.permute(0, 2, 3, 1)
    # lse is [C, s, a, r]; put it back in pair order (pair (a, b) sits at s = (a + b) mod p, a).
    pair_s, pair_a = fourier.sum_index(p), torch.arange(p).repeat_interleave(p)
    return lse[:, pair_s, pair_a].permute(0, 2, 1)


def _excluded_losses(
    logits: torch.Tensor, coeffs: torch.Tensor, key_freqs: Sequence[int], split: PairSplit
) -> Measures:
    """Train loss with the cos/sin(w_k(a+b)) components removed: all key frequencies, each alone."""
    removals = {"all": list(key_freqs)} | {f"k={k}": [k] for k in key_freqs}
    tables = torch.stack(
        [
            fourier.sum_component_table(coeffs, fourier.component_indices(freqs, False))
            for freqs in removals.values()
        ],
        dim=1,
    )  # [C, r, s, c]
    lse = _logsumexp_minus_tables(logits, tables)
    index, labels = split.train_index, split.train_labels
    sums = fourier.sum_index(logits.shape[-1])[index]
    label_logit = logits[:, index, labels].unsqueeze(1) - tables[:, :, sums, labels]
    losses = (lse[:, :, index] - label_logit).mean(dim=-1)  # [C, r]
    return {("excluded_loss", name): losses[:, i] for i, name in enumerate(removals)}


def logit_measures(logits: torch.Tensor, split: PairSplit, key_freqs: Sequence[int]) -> Measures:
    """Loss, accuracy, restricted and excluded loss of all-pairs logits [C, p^2, p] (a-major)."""
    out: Measures = {}
    for name, index, labels in (
        ("train", split.train_index, split.train_labels),
        ("test", split.test_index, split.test_labels),
    ):
        out[(f"{name}_loss", "")] = _loss(logits[:, index], labels)
        out[(f"{name}_acc", "")] = _accuracy(logits[:, index], labels)
    logits = logits.double()
    coeffs = fourier.sum_component_coefficients(logits)  # [C, p components, p outputs]
    out[("restricted_loss", "")] = _restricted_loss(coeffs, key_freqs, split)
    return out | _excluded_losses(logits, coeffs, key_freqs, split)


@torch.no_grad()
def all_pairs_logits(
    model: FinalPositionTransformer, params: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Final-position logits [C, p^2, p] for every pair (a-major), one checkpoint at a time."""
    p = model.cfg.p
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    n_checkpoints = next(iter(params.values())).shape[0]
    return torch.stack(
        [
            functional_call(model, {k: v[i] for k, v in params.items()}, (a, b))
            for i in range(n_checkpoints)
        ]
    )


def _long_table(steps: torch.Tensor, measures: Measures) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "step": steps.numpy(),
                "measure": measure,
                "component": component,
                "value": values.double().numpy(),
            }
        )
        for (measure, component), values in measures.items()
    ]
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def progress_measures(
    steps: Sequence[int],
    stacked_params: dict[str, torch.Tensor],
    model_cfg: ModelConfig,
    dataset: ModularDataset,
    key_freq_threshold: float = fourier.KEY_FREQ_THRESHOLD,
    chunk: int = 4,
    key_freqs: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Every progress measure of every checkpoint: a long table [step, measure, component, value].

    `stacked_params` have a leading checkpoint axis (as `checkpoints.load_stack` returns them).
    Checkpoints are processed `chunk` at a time, so memory holds the all-pairs logits of one chunk.
    `key_freqs` overrides the final checkpoint's key frequencies (e.g. to measure a control run
    against another run's set); the set used is stored in the table's attrs["key_frequencies"].
    """
    if dataset.p != model_cfg.p:
        raise ValueError(f"dataset p={dataset.p} does not match model p={model_cfg.p}")
    if key_freqs is None:
        key_freqs = final_key_frequencies(steps, stacked_params, key_freq_threshold)
    n_freqs = fourier.n_frequencies(model_cfg.p)
    if len(set(key_freqs)) != len(key_freqs) or not all(1 <= k <= n_freqs for k in key_freqs):
        raise ValueError(f"key frequencies {list(key_freqs)} must be distinct, in 1..{n_freqs}")
    split = PairSplit.from_dataset(dataset)
    model = FinalPositionTransformer(model_cfg, {k: v[0] for k, v in stacked_params.items()})
    step_tensor = torch.as_tensor(list(steps), dtype=torch.int64)
    collected: dict[tuple[str, str], list[torch.Tensor]] = {}
    for start in range(0, len(steps), chunk):
        params = {k: v[start : start + chunk] for k, v in stacked_params.items()}
        measures = weight_measures(params, model_cfg.p, key_freq_threshold)
        measures |= logit_measures(all_pairs_logits(model, params), split, key_freqs)
        for key, values in measures.items():
            collected.setdefault(key, []).append(values)
    table = _long_table(step_tensor, {key: torch.cat(v) for key, v in collected.items()})
    table.attrs["key_frequencies"] = [int(k) for k in key_freqs]
    return table
