"""A one-layer, LayerNorm-free transformer's residual stream after attention at its final
position, from per-token tables: the fast path shared by every task read at a constant last token
("a b =" in modular arithmetic, "c a b =" in the backdoor task).

At the final position the residual stream starts as the constant x_f = W_E[final] + W_pos[n - 1],
so each head's query is one constant vector. At every earlier position the stream is
W_E[token] + W_pos[pos]: it depends on one token, so its attention score and each head's output
there (value times W_O) are rows of small (position, token) tables, rebuilt every step and
gathered, the outputs as one embedding bag weighted by the attention pattern. The W_O matmul runs
once per (position, token), not once per example, and no [batch, pos, d_model] stream is built.

In training the inputs are the same every step, so the bag's layout (`TokenBag`: which example
reads which table row, and its transpose as a sparse matrix) is built once, and the tables'
gradient is one sparse-times-dense product instead of the embedding bag's sort-and-reduce:
measured on the published shape (3,830 examples x 8 rows, one thread, 2026-12-02) 1.5 ms
against 3.7 ms, forward and backward.
"""

from __future__ import annotations

import math
import warnings
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# torch marks its sparse CSR tensors beta and says so once per process; the one product used
# here is tested against the embedding bag's own backward (tests/test_final_position.py).
warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)


@dataclass(frozen=True)
class TokenBag:
    """Which table rows each example mixes ([batch, k], flattened), and the transposed mixing
    matrix's sparse structure: row r of it lists the examples that read table row r."""

    rows: torch.Tensor  # [batch * k]
    offsets: torch.Tensor  # [batch]: example i reads rows[i * k : (i + 1) * k]
    offset2bag: torch.Tensor  # [batch * k]: the example of each entry
    order: torch.Tensor  # entries sorted by table row (stable)
    crow: torch.Tensor  # [n_rows + 1] CSR row pointers of the transpose
    columns: torch.Tensor  # [batch * k] CSR column (example) of each sorted entry
    n_rows: int

    @classmethod
    def of(cls, rows: torch.Tensor, n_rows: int) -> TokenBag:
        batch, k = rows.shape
        flat = rows.reshape(-1)
        crow = flat.new_zeros(n_rows + 1)
        crow[1:] = torch.bincount(flat, minlength=n_rows).cumsum(0)
        order = torch.argsort(flat, stable=True)
        return cls(
            rows=flat,
            offsets=torch.arange(0, batch * k, k, device=rows.device),
            offset2bag=torch.arange(batch, device=rows.device).repeat_interleave(k),
            order=order,
            crow=crow,
            columns=order // k,
            n_rows=n_rows,
        )


class _PatternBag(torch.autograd.Function):
    """sum_j weights[i, j] * table[rows[i, j]] for each example i, with the tables' gradient as
    a sparse (transposed mixing matrix) times dense product."""

    @staticmethod
    def forward(ctx, table, weights, bag: TokenBag):
        ctx.save_for_backward(table, weights)
        ctx.bag = bag
        return F.embedding_bag(
            bag.rows, table, bag.offsets, mode="sum", per_sample_weights=weights.reshape(-1)
        )

    @staticmethod
    def backward(ctx, grad):
        table, weights = ctx.saved_tensors
        bag, batch = ctx.bag, grad.shape[0]
        mixing_t = torch.sparse_csr_tensor(
            bag.crow,
            bag.columns,
            weights.reshape(-1)[bag.order],
            (bag.n_rows, batch),
            check_invariants=False,  # built by TokenBag.of: sorted, in range
        )
        g_weights = torch.ops.aten._embedding_bag_per_sample_weights_backward(
            grad, table, bag.rows, bag.offsets, bag.offset2bag, 0, -1
        )
        return mixing_t @ grad, g_weights.view_as(weights), None


def training_bag(
    owner: object,
    inputs: tuple[torch.Tensor, ...],
    tokens: torch.Tensor,
    n_tokens: int,
    n_heads: int,
) -> TokenBag | None:
    """The bag layout of `tokens` ([batch, n - 1], made from `inputs`), remembered on `owner` (a
    model) while the same, unmodified `inputs` tensors come back: a training run's full batch.
    None off the CPU, where the sparse backward was not measured: the embedding bag serves."""
    if tokens.device.type != "cpu":
        return None
    cached = getattr(owner, "_token_bag", None)
    if cached is not None and _same_tensors(cached[0], inputs):
        return cached[1]
    rows = _table_rows(tokens, n_tokens, n_heads)
    bag = TokenBag.of(rows, tokens.shape[1] * n_tokens * n_heads)
    owner._token_bag = ([(weakref.ref(t), t._version) for t in inputs], bag)
    return bag


def _same_tensors(key: list, inputs: tuple[torch.Tensor, ...]) -> bool:
    """Whether `inputs` are the very tensors `key` remembers, unmodified since."""
    return len(key) == len(inputs) and all(
        ref() is t and version == t._version for (ref, version), t in zip(key, inputs, strict=True)
    )


def _table_rows(tokens: torch.Tensor, n_tokens: int, n_heads: int) -> torch.Tensor:
    """[batch, positions * heads]: the output-table row of each (position, head) per example."""
    before = tokens.shape[1]
    rows = tokens + n_tokens * torch.arange(before, device=tokens.device)
    heads = torch.arange(n_heads, device=tokens.device)
    return (rows[:, :, None] * n_heads + heads).reshape(len(tokens), before * n_heads)


def attention_stream(
    tokens: torch.Tensor,
    final_token: int,
    n_tokens: int,
    weights: dict[str, torch.Tensor],
    attn_rate: float = 1.0,
    bag: TokenBag | None = None,
) -> torch.Tensor:
    """The residual stream after attention at the final position [batch, d_model].

    tokens: [batch, n - 1] token ids before the final one, each < n_tokens (the table's rows).
    weights: W_E, W_pos, W_Q, W_K, W_V, W_O by TransformerLens name (W_Q: [h, d_model, d_head]).
    attn_rate (Zhong et al.): pattern = rate * softmax + (1 - rate) * uniform over positions.
    bag: `tokens`' layout (`training_bag`), to mix the outputs by `_PatternBag`.
    """
    W_E, W_pos = weights["W_E"], weights["W_pos"]
    W_Q, W_K, W_V, W_O = (weights[f"W_{n}"] for n in "QKVO")
    batch, before = tokens.shape
    h, d_model = W_Q.shape[0], W_E.shape[1]
    x_f = W_E[final_token] + W_pos[before]  # the stream at the final position (constant)
    q = torch.einsum("m,hmd->hd", x_f, W_Q)
    k_dot_q = torch.einsum("hmd,hd->mh", W_K, q) / math.sqrt(W_Q.shape[2])  # [d_model, h]
    x_tab = (W_E[None, :n_tokens] + W_pos[:before, None]).reshape(before * n_tokens, d_model)
    x_rows = tokens + n_tokens * torch.arange(before, device=tokens.device)  # x_tab row per token
    s_tab = x_tab @ k_dot_q  # [(position, token), h]
    # Positions first: softmax over a short leading axis is ~20x faster than over a last one.
    scores = torch.cat([s_tab[x_rows.t()], (x_f @ k_dot_q).expand(1, batch, h)])
    pattern = scores.softmax(dim=0)  # [n, batch, h]
    if attn_rate != 1.0:
        pattern = attn_rate * pattern + (1.0 - attn_rate) / (before + 1)
    out_tab = torch.einsum("tm,hmd,hdn->thn", x_tab, W_V, W_O).reshape(-1, d_model)
    mix = pattern[:before].permute(1, 0, 2).reshape(batch, before * h)  # as _table_rows orders
    if bag is not None:
        mixed = _PatternBag.apply(out_tab, mix, bag)
    else:
        out_rows = _table_rows(tokens, n_tokens, h)
        mixed = F.embedding_bag(out_rows, out_tab, per_sample_weights=mix, mode="sum")
    f_rows = torch.cat([torch.einsum("m,hmd,hdn->hn", x_f, W_V, W_O), x_f[None]])
    f_weights = torch.cat([pattern[before], pattern.new_ones(batch, 1)], dim=1)  # [batch, h + 1]
    return torch.addmm(mixed, f_weights, f_rows)
