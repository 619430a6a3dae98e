"""The shared final-position attention: the training bag's sparse backward against the embedding
bag's own, and when its layout is reused."""

import torch
import torch.nn.functional as F

from alignlab.final_position import TokenBag, _PatternBag, training_bag


def _bag_inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n_rows, batch, k, m = 40, 300, 6, 8
    rows = torch.randint(0, n_rows - 3, (batch, k), generator=gen)  # the last rows never read
    rows[:, 1] = rows[:, 0]  # an example that reads one row twice
    table = torch.randn(n_rows, m, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(batch, k, generator=gen, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(batch, m, generator=gen, dtype=torch.float64)
    return rows, table, weights, grad, n_rows


def test_pattern_bag_equals_the_embedding_bag_forward_and_backward_in_float64():
    rows, table, weights, grad, n_rows = _bag_inputs()
    ours = _PatternBag.apply(table, weights, TokenBag.of(rows, n_rows))
    g_table, g_weights = torch.autograd.grad(ours, (table, weights), grad)
    ref = F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")
    r_table, r_weights = torch.autograd.grad(ref, (table, weights), grad)
    torch.testing.assert_close(ours, ref, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(g_table, r_table, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_weights, r_weights, rtol=1e-12, atol=1e-14)
    assert torch.all(g_table[-3:] == 0)  # rows nobody reads get no gradient


def test_the_layout_is_kept_for_the_same_unmodified_tensors_only():
    owner = torch.nn.Module()
    a, b = torch.randint(0, 5, (20,)), torch.randint(0, 5, (20,))
    tokens = torch.stack([a, b], dim=1)
    first = training_bag(owner, (a, b), tokens, 5, 2)
    assert training_bag(owner, (a, b), tokens, 5, 2) is first
    assert training_bag(owner, (a.clone(), b), tokens, 5, 2) is not first  # equal, not the same
    second = training_bag(owner, (a, b), tokens, 5, 2)
    a[0] = (a[0] + 1) % 5  # changed in place: the layout must follow
    third = training_bag(owner, (a, b), torch.stack([a, b], dim=1), 5, 2)
    assert third is not second and not torch.equal(third.rows, second.rows)
