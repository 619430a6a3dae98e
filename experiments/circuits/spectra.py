"""Fourier measures of the grokked modular-addition circuit (Nanda et al. 2023, sections 4-5),
batched over checkpoints; never a p^3 cube of basis functions.

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
"""

from __future__ import annotations

import math

import torch

from alignlab import fourier
from alignlab.models import ACTIVATIONS, ModelConfig

EXPLAINED_THRESHOLD = 0.85


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
