"""Fourier analysis on Z_p for the grokking progress measures (Nanda et al. 2023).

Pure functions on tensors; everything is computed in float64. A leading "batch" axis (one entry
per checkpoint) is supported throughout, so a whole run is analysed with a few matmuls.

Basis conventions (p odd): component j = 0 is the constant, j = 2k - 1 is cos(w_k x) and
j = 2k is sin(w_k x), with w_k = 2 pi k / p and frequencies k = 1..(p-1)/2.

Functions of (a + b) mod p. For logits L[a, b, c] the progress measures need, for every output c,
the coefficients alpha_j[c] of L on the functions f_j(a, b) = 1, cos(w_k(a+b)), sin(w_k(a+b)).
These are orthogonal on the p x p grid with squared norms p^2 (constant) and p^2 / 2 (cos, sin),
and <L[:, :, c], f_j> = sum_s G[s, c] f_j(s), where G[s, c] = sum_{a+b = s mod p} L[a, b, c] are
the "diagonal sums". So one index_add over the p^2 pairs and one [p, p] matmul give every
coefficient: no p^3 cube of basis functions is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

# Default key-frequency threshold: a fraction of the largest frequency norm. See
# `key_frequency_mask` for why 0.2.
KEY_FREQ_THRESHOLD = 0.2


def n_frequencies(p: int) -> int:
    """Number of non-constant frequencies, (p - 1) / 2, for odd p."""
    if p < 3 or p % 2 == 0:
        raise ValueError(f"p must be an odd integer >= 3, got {p}")
    return (p - 1) // 2


def component_labels(p: int) -> list[str]:
    """Human-readable names of the basis rows: 'const', 'cos 1', 'sin 1', 'cos 2', ..."""
    labels = ["const"]
    for k in range(1, n_frequencies(p) + 1):
        labels += [f"cos {k}", f"sin {k}"]
    return labels


def _raw_basis(p: int) -> torch.Tensor:
    """Unnormalised rows 1, cos(w_1 x), sin(w_1 x), ... as a [p, p] float64 tensor."""
    k = torch.arange(1, n_frequencies(p) + 1)
    # k * x mod p first, so that every angle is exact to rounding however large k * x is.
    angle = 2 * math.pi * (torch.outer(k, torch.arange(p)) % p).double() / p  # [K, p]
    waves = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1).reshape(-1, p)
    return torch.cat([torch.ones(1, p, dtype=torch.float64), waves])


def fourier_basis(p: int) -> tuple[torch.Tensor, list[str]]:
    """Orthonormal Fourier basis of R^p, rows ordered const, cos 1, sin 1, ..., and its labels."""
    raw = _raw_basis(p)
    return raw / raw.norm(dim=1, keepdim=True), component_labels(p)


def component_norms(W: torch.Tensor, axis: int, batch_dims: int = 0) -> torch.Tensor:
    """Norm of each Fourier component of W along its token `axis` -> [*batch, p].

    The first `batch_dims` axes (e.g. one per checkpoint) are kept; every other axis is reduced by
    the L2 norm. `axis` indexes W as given and must not be a batch axis.
    """
    axis = axis % W.dim()
    if axis < batch_dims:
        raise ValueError(f"token axis {axis} is one of the {batch_dims} batch axes")
    p = W.shape[axis]
    basis, _ = fourier_basis(p)
    coeffs = W.double().movedim(axis, -1) @ basis.T  # [..., p]: coefficient on each basis row
    batch_shape = W.shape[:batch_dims]
    return coeffs.reshape(*batch_shape, -1, p).norm(dim=-2)


def frequency_norms(comp_norms: torch.Tensor) -> torch.Tensor:
    """Per frequency k = 1..(p-1)/2: sqrt(norm_cos_k^2 + norm_sin_k^2) -> [..., (p-1)/2]."""
    cos, sin = comp_norms[..., 1::2], comp_norms[..., 2::2]
    return torch.sqrt(cos.double() ** 2 + sin.double() ** 2)


def gini(x: torch.Tensor) -> torch.Tensor:
    """Hurley & Rickard (2009) Gini index of non-negative vectors along the last axis.

    G = 1 - 2 sum_k (c_(k) / ||c||_1) (N - k + 1/2) / N, with c sorted ascending (k = 1..N). One
    non-zero entry gives 1 - 1/N and a flat vector 0; an all-zero vector is defined as 0 (flat).
    """
    x = x.double()
    if (x < 0).any():
        raise ValueError("gini expects non-negative values")
    n = x.shape[-1]
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    weights = (n - ranks + 0.5) / n
    total = x.sum(dim=-1, keepdim=True)
    share = x.sort(dim=-1).values / total.clamp_min(torch.finfo(torch.float64).tiny)
    g = 1 - 2 * (share * weights).sum(dim=-1)
    return torch.where(total.squeeze(-1) > 0, g, torch.zeros_like(g))


def key_frequency_mask(
    freq_norms: torch.Tensor, threshold: float = KEY_FREQ_THRESHOLD
) -> torch.Tensor:
    """Bool [..., K]: frequencies whose norm is at least `threshold` times the largest.

    Why a fraction of the largest: it is scale-free (weight decay shrinks the whole spectrum during
    cleanup) and needs no noise model. Why 0.2: in a grokked model the key frequencies stand well
    apart from the rest. Measured on W_L of a p=59 run (50% train, seed 0, grokked at step 1.4k,
    read at step 2.8k): the five key frequencies had 0.53-1.0 of the largest norm and the next one
    0.045, so any threshold in 0.05-0.5 gives the same set, and 0.2 sits in the middle of the gap
    (on a log scale). W_E's spectrum in the same run had the five at >= 0.70 but a tail at
    0.19-0.30, which is why the measures take key frequencies from W_L. At initialisation the
    spectrum is flat and (nearly) every frequency passes: a per-checkpoint count then reads "no
    sparse structure yet", and falls to a small set as the circuits form.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"key-frequency threshold must be in (0, 1], got {threshold}")
    largest = freq_norms.amax(dim=-1, keepdim=True)
    return (freq_norms >= threshold * largest) & (largest > 0)


def key_frequencies(freq_norms: torch.Tensor, threshold: float = KEY_FREQ_THRESHOLD) -> list[int]:
    """The frequencies k (1-based) of a 1-D spectrum that pass `key_frequency_mask`."""
    if freq_norms.dim() != 1:
        raise ValueError(f"expected one spectrum [K], got shape {tuple(freq_norms.shape)}")
    mask = key_frequency_mask(freq_norms, threshold)
    return [int(i) + 1 for i in torch.nonzero(mask).flatten()]


def component_indices(freqs: Iterable[int], constant: bool) -> list[int]:
    """Basis rows (see module doc) of the constant (if asked) and of cos/sin of each frequency."""
    rows = [0] if constant else []
    for k in freqs:
        rows += [2 * k - 1, 2 * k]
    return rows


def sum_index(p: int) -> torch.Tensor:
    """(a + b) mod p for all pairs in a-major order (pair index a * p + b), int64 [p^2]."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return (a + b) % p


def _as_pairs(logits: torch.Tensor) -> torch.Tensor:
    """Accept [..., p, p, c] or the flattened a-major form [..., p^2, c]; return the latter."""
    p = logits.shape[-1]
    if logits.shape[-2] == p * p:
        return logits
    if logits.dim() >= 3 and logits.shape[-3:-1] == (p, p):
        return logits.flatten(-3, -2)
    raise ValueError(f"expected logits [..., p, p, p] or [..., p^2, p], got {tuple(logits.shape)}")


def diagonal_sums(logits: torch.Tensor) -> torch.Tensor:
    """G[..., s, c] = sum over pairs with (a + b) mod p = s of L[..., a, b, c], in float64."""
    pairs = _as_pairs(logits).double()
    p = pairs.shape[-1]
    out = pairs.new_zeros(*pairs.shape[:-2], p, p)
    return out.index_add_(-2, sum_index(p), pairs)


def sum_component_coefficients(logits: torch.Tensor) -> torch.Tensor:
    """alpha[..., j, c]: L[a, b, c] = sum_j alpha[j, c] f_j(a + b) + (a part orthogonal to all f_j).

    f_j are the unnormalised functions 1, cos(w_k s), sin(w_k s) of s = (a + b) mod p.
    """
    sums = diagonal_sums(logits)
    p = sums.shape[-1]
    norm_sq = torch.full((p, 1), p * p / 2, dtype=torch.float64)
    norm_sq[0] = p * p
    return (_raw_basis(p) @ sums) / norm_sq


def sum_component_table(coeffs: torch.Tensor, components: list[int]) -> torch.Tensor:
    """T[..., s, c] = sum_{j in components} alpha[j, c] f_j(s): the projection as a table over s.

    The projected logits of pair (a, b) are T[..., (a + b) mod p, :].
    """
    p = coeffs.shape[-1]
    rows = torch.tensor(components, dtype=torch.long)
    return _raw_basis(p)[rows].T @ coeffs[..., rows, :]
