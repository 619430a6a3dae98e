"""Clock vs pizza (Zhong, Liu, Tegmark, Andreas 2023): one function per Snakemake rule.

A one-layer transformer (the fast `FinalPositionTransformer`) learns (a + b) mod p with its
attention pattern mixed with a uniform one, pattern = a * softmax + (1 - a) * uniform, for a sweep
of attention rates a. Two measures of the final checkpoint tell the algorithms apart:

- **Gradient symmetricity**: for random triples (a, b, c) (c drawn independently of a + b, as
  in the paper), the cosine similarity of d logit_c / d E_a and d logit_c / d E_b, where E_a and
  E_b are the token embeddings fed to positions 0 and 1; averaged over the triples. The pizza
  algorithm computes with E_a + E_b, so its gradients point the same way (close to 1); the clock
  multiplies the two embeddings (through attention), so they do not.
- **Distance irrelevance**: the correct-answer logit L(a, b) = logit_{(a+b) mod p} over all p^2
  pairs, grouped by the distance d = (a - b) mod p; the mean over d of its standard deviation
  within the group, divided by its standard deviation over all pairs. The pizza's correct logit
  depends on d (|cos(w d / 2)|), so this is small; the clock's does not (close to 1).

Standard deviations are population ones (ddof 0), so a logit that depends only on d gives exactly
0 and one that does not depend on d at all gives exactly 1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from alignlab.checkpoints import load_weights, run_checkpoints
from alignlab.models import ACTIVATIONS, FinalPositionTransformer, ModelConfig
from alignlab.results import write_numbers


def logits_from_embeddings(
    model: FinalPositionTransformer, e_a: torch.Tensor, e_b: torch.Tensor
) -> torch.Tensor:
    """Final-position logits [batch, p] with the token embeddings of positions 0 and 1 given.

    The same computation as `FinalPositionTransformer.forward`, written on embedding vectors
    (e_a, e_b: [batch, d_model]) rather than token ids, so they can be differentiated.
    """
    cfg = model.cfg
    attn, mlp = model.get_submodule("blocks.0.attn"), model.get_submodule("blocks.0.mlp")
    W_E, W_pos = model.embed.W_E, model.pos_embed.W_pos
    x_eq = (W_E[cfg.eq_token] + W_pos[2]).expand_as(e_a)
    xs = torch.stack([e_a + W_pos[0], e_b + W_pos[1], x_eq], dim=1)  # [batch, 3, m]
    q = torch.einsum("bm,hmd->bhd", x_eq, attn.W_Q)
    k = torch.einsum("bpm,hmd->bhpd", xs, attn.W_K)
    v = torch.einsum("bpm,hmd->bhpd", xs, attn.W_V)
    scores = torch.einsum("bhd,bhpd->bhp", q, k) / math.sqrt(cfg.d_head)
    pattern = scores.softmax(dim=-1)
    pattern = cfg.attn_rate * pattern + (1.0 - cfg.attn_rate) / cfg.n_ctx
    z = torch.einsum("bhp,bhpd->bhd", pattern, v)
    resid_mid = x_eq + torch.einsum("bhd,hdm->bm", z, attn.W_O)
    post = ACTIVATIONS[cfg.act_fn](resid_mid @ mlp.W_in + mlp.b_in)
    resid_post = resid_mid + post @ mlp.W_out + mlp.b_out
    return resid_post @ model.unembed.W_U


def input_gradients(
    logit_fn, e_a: torch.Tensor, e_b: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """d logit_c / d e_a and d logit_c / d e_b per row, for `logit_fn(e_a, e_b) -> [batch, p]`.

    Each row's logit depends only on that row's embeddings, so one backward pass of the sum of
    the selected logits gives every row's gradients.
    """
    e_a = e_a.detach().clone().requires_grad_(True)
    e_b = e_b.detach().clone().requires_grad_(True)
    logits = logit_fn(e_a, e_b)
    selected = logits.gather(1, c[:, None]).sum()
    grad_a, grad_b = torch.autograd.grad(selected, (e_a, e_b))
    return grad_a, grad_b


def gradient_symmetricity(grad_a: torch.Tensor, grad_b: torch.Tensor) -> float:
    """Mean cosine similarity of the rows of grad_a and grad_b."""
    return float(F.cosine_similarity(grad_a.double(), grad_b.double(), dim=1).mean())


def distance_irrelevance(correct_logits: np.ndarray) -> float:
    """L[a, b] ([p, p]) grouped by d = (a - b) mod p: mean within-group std / overall std."""
    L = np.asarray(correct_logits, dtype=np.float64)
    p = L.shape[0]
    if L.shape != (p, p):
        raise ValueError(f"correct_logits must be [p, p], got {L.shape}")
    overall = L.std()
    if overall == 0:
        raise ValueError("the correct-answer logit is constant: distance irrelevance is undefined")
    a = np.arange(p)
    within = [L[a, (a - d) % p].std() for d in range(p)]  # b = a - d, so a - b = d
    return float(np.mean(within) / overall)


@torch.no_grad()
def correct_logits(model: FinalPositionTransformer) -> np.ndarray:
    """logit_{(a+b) mod p}(a, b) for every pair, as a [p, p] array."""
    p = model.cfg.p
    a, b = (x.ravel() for x in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    logits = model(a, b).double()
    return logits.gather(1, ((a + b) % p)[:, None]).view(p, p).numpy()


def symmetricity_of_model(model: FinalPositionTransformer, n_samples: int, seed: int) -> float:
    """Gradient symmetricity over `n_samples` random (a, b, c) triples drawn from `seed`."""
    p = model.cfg.p
    gen = torch.Generator().manual_seed(seed)
    a, b, c = (torch.randint(0, p, (n_samples,), generator=gen) for _ in range(3))
    W_E = model.embed.W_E.detach()
    grad_a, grad_b = input_gradients(
        lambda e_a, e_b: logits_from_embeddings(model, e_a, e_b), W_E[a], W_E[b], c
    )
    return gradient_symmetricity(grad_a, grad_b)


def measure_run(
    run_dir: Path, n_samples: int, sample_seed: int, out_table: Path, every: int = 1
) -> None:
    """Symmetricity and distance irrelevance at checkpoints of a run (every `every`-th, and the
    last), with the train/test loss and accuracy from its train log; tidy [step, measure,
    component, value]."""
    run_dir = Path(run_dir)
    found = run_checkpoints(run_dir)  # exactly the train log's steps, or CheckpointError
    chosen = found[::every] + ([found[-1]] if (len(found) - 1) % every else [])
    rows = []
    for step, path in chosen:
        params, _, cfg = load_weights(path)
        model = FinalPositionTransformer(ModelConfig(**cfg), params)
        rows.append(
            (step, "grad_symmetricity", symmetricity_of_model(model, n_samples, sample_seed))
        )
        rows.append((step, "distance_irrelevance", distance_irrelevance(correct_logits(model))))
    log = pd.read_parquet(run_dir / "train_log.parquet")
    for measure in ("train_loss", "test_loss", "train_acc", "test_acc"):
        rows += [(int(s), measure, float(v)) for s, v in zip(log.step, log[measure], strict=True)]
    table = pd.DataFrame(rows, columns=["step", "measure", "value"])
    table.insert(2, "component", "")
    table.sort_values(["measure", "step"]).to_parquet(out_table, index=False)


def _final(measures: pd.DataFrame, measure: str) -> pd.Series:
    rows = measures[measures.measure == measure]
    last = rows.groupby("run_id").step.transform("max")
    return rows[rows.step == last].set_index("run_id")["value"]


def markers(measures_path, runs_path, out: Path) -> None:
    """Per-run marker values (final checkpoint): symmetricity, distance irrelevance, accuracy."""
    measures = pd.read_parquet(measures_path)
    rows = []
    for marker, measure in (
        ("grad_symmetricity", "grad_symmetricity"),
        ("distance_irrelevance", "distance_irrelevance"),
        ("final_test_acc", "test_acc"),
        ("final_train_acc", "train_acc"),
    ):
        rows += [
            {"run_id": rid, "marker": marker, "value": float(v)}
            for rid, v in _final(measures, measure).items()
        ]
    pd.DataFrame(rows, columns=["run_id", "marker", "value"]).to_parquet(out, index=False)


def transition_rate(rates, symmetricity, level: float = 0.8) -> float:
    """The attention rate at which symmetricity first falls below `level` (midway between the
    pizza and clock thresholds, 0.9 and 0.7), interpolated linearly between grid rates; NaN if it
    never does."""
    order = np.argsort(rates)
    a, s = np.asarray(rates, float)[order], np.asarray(symmetricity, float)[order]
    for i in range(1, len(a)):
        if s[i] < level <= s[i - 1]:
            return float(a[i - 1] + (s[i - 1] - level) / (s[i - 1] - s[i]) * (a[i] - a[i - 1]))
    return math.nan


def numbers(markers_path, runs_path, out: Path) -> None:
    """The numbers the paper quotes: setup, and the measures at the lowest and highest rate."""

    runs = pd.read_parquet(runs_path).sort_values(["attn_rate", "seed"])
    values = pd.read_parquet(markers_path).pivot_table(
        index="run_id", columns="marker", values="value", dropna=False
    )
    table = runs.set_index("run_id").join(values)
    by_rate = table.groupby("attn_rate")[
        ["grad_symmetricity", "distance_irrelevance", "final_test_acc"]
    ].mean()
    low, high = by_rate.index.min(), by_rate.index.max()
    first = runs.iloc[0]
    result = {
        "p": int(first.p),
        "frac_train": float(first.frac_train),
        "lr": float(first.lr),
        "weight_decay": float(first.weight_decay),
        "steps": int(first.steps),
        "d_model": int(first.d_model),
        "n_rates": int(len(by_rate)),
        "n_seeds": int(runs.seed.nunique()),
        "low_rate": float(low),
        "high_rate": float(high),
        "low_symmetricity": float(by_rate.loc[low, "grad_symmetricity"]),
        "high_symmetricity": float(by_rate.loc[high, "grad_symmetricity"]),
        "low_distance_irrelevance": float(by_rate.loc[low, "distance_irrelevance"]),
        "high_distance_irrelevance": float(by_rate.loc[high, "distance_irrelevance"]),
        "min_test_acc": float(table.final_test_acc.min()),
    }
    per_seed = [
        transition_rate(group.attn_rate, group.grad_symmetricity)
        for _, group in table.groupby("seed")
    ]
    # a seed whose symmetricity never crosses 0.8 is listed as such, never dropped silently
    crossed = [a for a in per_seed if math.isfinite(a)]
    result["transition_rates"] = ", ".join(
        "never" if math.isnan(a) else f"{a:.2f}" for a in per_seed
    )
    result["n_seeds_crossing"] = len(crossed)
    result["transition_rate_mean"] = float(np.mean(crossed)) if crossed else "none"
    result["transition_rate_sd"] = float(np.std(crossed, ddof=1)) if len(crossed) > 1 else "n/a"
    write_numbers(result, out)
