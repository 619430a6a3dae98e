"""Tolerances for comparing floating-point results that were computed along different paths.

Two fp32 results of one quantity reached along different paths (batched vs alone, fused vs
unfused, the TransformerLens bridge vs the fast model, vectorized vs per run, chunked vs whole)
differ by rounding: the order in which sums are accumulated depends on the batch shape and on the
CPU kernels MKL and ATen pick (AVX-512, AVX2, SSE). Each rounding moves a result by at most eps/2
of its magnitude, and in a length-n sum such errors add up like a random walk, about sqrt(n) of
them. A fixed threshold such as 1e-6 sits a few eps away from fp32's resolution and passes on one
CPU but not on another, so these tolerances are derived from the dtype instead.

The safety factor and `depth` (how many chained reductions the path has: matmuls, softmax, norms)
keep the tolerance far below the size of a real bug (a wrong sign, index or term moves a result
by a sizeable fraction of its magnitude), while leaving room for every kernel choice.

Bit identity (torch.equal) is for the same code path run twice only (resume, determinism).
"""

from __future__ import annotations

import math

import numpy as np
import torch

# The rounding of a length-n sum has a spread of about eps * sqrt(n) / 2; 4 eps * sqrt(n) is
# eight of those, and measured differences between paths (AVX-512, AVX2 and plain kernels) stay
# below a twentieth of the resulting tolerance.
SAFETY = 4.0


def rounding_tol(n: int, depth: int = 1, dtype: torch.dtype = torch.float32) -> float:
    """Relative tolerance for one quantity computed along two paths with reductions of length n.

    SAFETY * eps(dtype) * sqrt(n) per reduction, times `depth` chained reductions.
    """
    return SAFETY * torch.finfo(dtype).eps * math.sqrt(n) * depth


def assert_close_fp(
    actual,
    expected,
    *,
    n: int,
    depth: int = 1,
    dtype: torch.dtype = torch.float32,
    scale: float | None = None,
    name: str = "",
) -> None:
    """|actual - expected| <= rounding_tol(n, depth, dtype) * scale, elementwise.

    `scale` is the magnitude the rounding is relative to, by default max |expected| (an element
    near zero after cancellation carries the rounding of the large terms it came from).
    Accepts tensors, arrays or floats.
    """
    got = np.asarray(actual.detach() if isinstance(actual, torch.Tensor) else actual, np.float64)
    want = np.asarray(
        expected.detach() if isinstance(expected, torch.Tensor) else expected, np.float64
    )
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if scale is None:
        scale = float(np.abs(want).max()) if want.size else 0.0
    tol = rounding_tol(n, depth, dtype) * max(scale, torch.finfo(dtype).tiny)
    diff = float(np.abs(got - want).max()) if want.size else 0.0
    assert np.isfinite(got).all() and diff <= tol, (
        f"{name}: max abs diff {diff:.3g} > tolerance {tol:.3g} "
        f"({diff / tol:.2g}x; n={n}, depth={depth}, {dtype}, scale {scale:.3g})"
    )
