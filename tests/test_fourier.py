"""Known answers for the Fourier tools behind the grokking progress measures."""

from __future__ import annotations

import math

import pytest
import torch

from alignlab import fourier

torch.set_num_threads(1)


def wave(p: int, k: int, kind: str) -> torch.Tensor:
    x = torch.arange(p, dtype=torch.float64)
    return (torch.cos if kind == "cos" else torch.sin)(2 * math.pi * k * x / p)


def pure_frequency_matrix(p: int, freqs: list[int], d: int = 8, seed: int = 0) -> torch.Tensor:
    """[p, d]: each cos/sin wave of `freqs` times its own orthonormal direction, equal amplitude."""
    directions, _ = torch.linalg.qr(
        torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    )
    waves = [wave(p, k, kind) for k in freqs for kind in ("cos", "sin")]
    return sum(torch.outer(w, directions[:, i]) for i, w in enumerate(waves))


def brute_force_coefficients(logits: torch.Tensor) -> torch.Tensor:
    """alpha[j, c] = <L[:, :, c], f_j> / <f_j, f_j> with f_j built densely on the grid (small p)."""
    p = logits.shape[-1]
    s = (torch.arange(p).view(p, 1) + torch.arange(p).view(1, p)) % p
    funcs = [torch.ones(p, p, dtype=torch.float64)]
    for k in range(1, (p - 1) // 2 + 1):
        funcs += [wave(p, k, "cos")[s], wave(p, k, "sin")[s]]
    dense = torch.stack(funcs)  # [j, a, b]
    inner = torch.einsum("jab,...abc->...jc", dense, logits.double())
    return inner / (dense**2).sum(dim=(1, 2)).view(p, 1)


@pytest.mark.parametrize("p", [7, 13, 113])
def test_fourier_basis_is_orthonormal(p):
    basis, labels = fourier.fourier_basis(p)
    assert basis.dtype == torch.float64 and basis.shape == (p, p)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64))
    assert labels[:3] == ["const", "cos 1", "sin 1"] and labels[-1] == f"sin {(p - 1) // 2}"


def test_fourier_basis_rows_are_the_named_waves():
    p = 11
    basis, labels = fourier.fourier_basis(p)
    torch.testing.assert_close(basis[0], torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64))
    for k in (1, 4, 5):
        assert labels[2 * k - 1] == f"cos {k}" and labels[2 * k] == f"sin {k}"
        torch.testing.assert_close(basis[2 * k - 1], wave(p, k, "cos") * math.sqrt(2 / p))
        torch.testing.assert_close(basis[2 * k], wave(p, k, "sin") * math.sqrt(2 / p))


def test_even_or_tiny_p_is_rejected():
    for p in (2, 8):
        with pytest.raises(ValueError, match="odd"):
            fourier.fourier_basis(p)


def test_pure_frequencies_3_and_7_give_those_key_frequencies_and_a_high_gini():
    p = 113
    W_E = pure_frequency_matrix(p, [3, 7])
    norms = fourier.component_norms(W_E, axis=0)
    nonzero = torch.nonzero(norms > 1e-9).flatten().tolist()
    assert nonzero == [5, 6, 13, 14]  # cos 3, sin 3, cos 7, sin 7
    torch.testing.assert_close(
        norms[nonzero], torch.full((4,), math.sqrt(p / 2), dtype=torch.float64)
    )
    spectrum = fourier.frequency_norms(norms)
    assert spectrum.shape == ((p - 1) // 2,)
    assert fourier.key_frequencies(spectrum) == [3, 7]
    # Four equal non-zero entries out of N = p: G = 1 - 4 / N exactly (about 0.965).
    assert fourier.gini(norms).item() == pytest.approx(1 - 4 / p, abs=1e-9)


def test_identity_embedding_has_a_flat_spectrum_and_zero_gini():
    norms = fourier.component_norms(torch.eye(23), axis=0)
    torch.testing.assert_close(norms, torch.ones(23, dtype=torch.float64))
    assert fourier.gini(norms).item() == pytest.approx(0.0, abs=1e-12)


def test_component_norms_reduce_other_axes_by_l2_and_keep_the_batch_axis():
    gen = torch.Generator().manual_seed(1)
    stack = torch.randn(3, 5, 13, generator=gen)  # [checkpoints, d_mlp, p], token axis last
    basis, _ = fourier.fourier_basis(13)
    batched = fourier.component_norms(stack, axis=-1, batch_dims=1)
    assert batched.shape == (3, 13)
    for i in range(3):
        expected = (basis @ stack[i].double().T).norm(dim=1)
        torch.testing.assert_close(batched[i], expected)
        torch.testing.assert_close(fourier.component_norms(stack[i].T, axis=0), expected)
    with pytest.raises(ValueError, match="batch"):
        fourier.component_norms(stack, axis=0, batch_dims=1)


def test_frequency_norms_combine_cos_and_sin():
    norms = torch.tensor([9.0, 3.0, 4.0, 0.0, 2.0, 5.0, 12.0])  # p = 7
    torch.testing.assert_close(
        fourier.frequency_norms(norms), torch.tensor([5.0, 2.0, 13.0], dtype=torch.float64)
    )


def test_gini_known_values():
    n = 10
    assert fourier.gini(torch.eye(n)[0]).item() == pytest.approx(1 - 1 / n)
    assert fourier.gini(torch.ones(n)).item() == pytest.approx(0.0, abs=1e-12)
    assert fourier.gini(torch.tensor([0.0, 0.0, 1.0, 1.0])).item() == pytest.approx(0.5)
    assert fourier.gini(torch.zeros(n)).item() == 0.0
    with pytest.raises(ValueError):
        fourier.gini(torch.tensor([1.0, -1.0]))


def test_gini_equals_mean_absolute_difference_form_batched_and_scale_free():
    x = torch.rand(4, 17, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    pairwise = (x.unsqueeze(-1) - x.unsqueeze(-2)).abs().sum(dim=(-1, -2))
    expected = pairwise / (2 * x.shape[-1] ** 2 * x.mean(dim=-1))
    torch.testing.assert_close(fourier.gini(x), expected)
    torch.testing.assert_close(fourier.gini(7.5 * x), expected)


def test_key_frequency_threshold_is_a_fraction_of_the_largest():
    spectrum = torch.tensor([0.19, 1.0, 0.0, 0.2, 0.5])
    assert fourier.key_frequencies(spectrum) == [2, 4, 5]
    assert fourier.key_frequencies(spectrum, threshold=0.3) == [2, 5]
    assert fourier.key_frequencies(spectrum, threshold=1.0) == [2]
    assert fourier.key_frequencies(torch.zeros(5)) == []
    batched = fourier.key_frequency_mask(torch.stack([spectrum, spectrum.flip(0)]), 0.3)
    assert batched.sum(-1).tolist() == [2, 2]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            fourier.key_frequency_mask(spectrum, bad)


@pytest.mark.parametrize("p", [7, 11])
def test_diagonal_sums_equal_explicit_loops(p):
    logits = torch.randn(p, p, p, generator=torch.Generator().manual_seed(p), dtype=torch.float64)
    expected = torch.zeros(p, p, dtype=torch.float64)
    for a in range(p):
        for b in range(p):
            expected[(a + b) % p] += logits[a, b]
    torch.testing.assert_close(fourier.diagonal_sums(logits), expected)
    torch.testing.assert_close(fourier.diagonal_sums(logits.reshape(p * p, p)), expected)


@pytest.mark.parametrize("p", [7, 11])
def test_projection_via_diagonal_sums_equals_brute_force(p):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, p, p, p, generator=gen)  # a checkpoint axis in front
    coeffs = fourier.sum_component_coefficients(logits)
    assert coeffs.shape == (2, p, p)
    for i in range(2):
        torch.testing.assert_close(coeffs[i], brute_force_coefficients(logits[i]))
    flat = fourier.sum_component_coefficients(logits.reshape(2, p * p, p))
    torch.testing.assert_close(flat, coeffs)


def test_function_of_the_sum_is_reconstructed_and_residual_is_orthogonal():
    p = 11
    gen = torch.Generator().manual_seed(4)
    g = torch.randn(p, p, generator=gen, dtype=torch.float64)  # g[s, c]
    as_pairs = g[fourier.sum_index(p)]  # L[a, b, c] = g[(a + b) mod p, c]
    coeffs = fourier.sum_component_coefficients(as_pairs)
    torch.testing.assert_close(fourier.sum_component_table(coeffs, list(range(p))), g)

    noise = torch.randn(p * p, p, generator=gen, dtype=torch.float64)
    keep = fourier.component_indices([2, 5], constant=True)
    assert keep == [0, 3, 4, 9, 10]
    table = fourier.sum_component_table(fourier.sum_component_coefficients(noise), keep)
    residual = noise - table[fourier.sum_index(p)]
    left = brute_force_coefficients(residual.reshape(p, p, p))[keep]
    torch.testing.assert_close(left, torch.zeros_like(left), atol=1e-12, rtol=0)


def test_diagonal_sums_reject_a_non_grid_shape():
    with pytest.raises(ValueError, match="expected logits"):
        fourier.diagonal_sums(torch.zeros(10, 7))
