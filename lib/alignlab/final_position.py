"""A one-layer, LayerNorm-free transformer's residual stream after attention at its final
position, from per-token tables: the fast path shared by every task read at a constant last token
("a b =" in modular arithmetic, "c a b =" in the backdoor task).

At the final position the residual stream starts as the constant x_f = W_E[final] + W_pos[n - 1],
so each head's query is one constant vector. At every earlier position the stream is
W_E[token] + W_pos[pos]: it depends on one token, so its attention score and each head's output
there (value times W_O) are rows of small (position, token) tables, rebuilt every step and
gathered, the outputs as one embedding bag weighted by the attention pattern. The W_O matmul runs
once per (position, token), not once per example, and no [batch, pos, d_model] stream is built.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def attention_stream(
    tokens: torch.Tensor,
    final_token: int,
    n_tokens: int,
    weights: dict[str, torch.Tensor],
    attn_rate: float = 1.0,
) -> torch.Tensor:
    """The residual stream after attention at the final position [batch, d_model].

    tokens: [batch, n - 1] token ids before the final one, each < n_tokens (the table's rows).
    weights: W_E, W_pos, W_Q, W_K, W_V, W_O by TransformerLens name (W_Q: [h, d_model, d_head]).
    attn_rate (Zhong et al.): pattern = rate * softmax + (1 - rate) * uniform over positions.
    """
    W_E, W_pos = weights["W_E"], weights["W_pos"]
    W_Q, W_K, W_V, W_O = (weights[f"W_{n}"] for n in "QKVO")
    batch, before = tokens.shape
    h, d_model = W_Q.shape[0], W_E.shape[1]
    x_f = W_E[final_token] + W_pos[before]  # the stream at the final position (constant)
    q = torch.einsum("m,hmd->hd", x_f, W_Q)
    k_dot_q = torch.einsum("hmd,hd->mh", W_K, q) / math.sqrt(W_Q.shape[2])  # [d_model, h]
    x_tab = (W_E[None, :n_tokens] + W_pos[:before, None]).reshape(before * n_tokens, d_model)
    rows = tokens + n_tokens * torch.arange(before, device=tokens.device)  # x_tab row per token
    s_tab = x_tab @ k_dot_q  # [(position, token), h]
    # Positions first: softmax over a short leading axis is ~20x faster than over a last one.
    scores = torch.cat([s_tab[rows.t()], (x_f @ k_dot_q).expand(1, batch, h)])
    pattern = scores.softmax(dim=0)  # [n, batch, h]
    if attn_rate != 1.0:
        pattern = attn_rate * pattern + (1.0 - attn_rate) / (before + 1)
    out_tab = torch.einsum("tm,hmd,hdn->thn", x_tab, W_V, W_O)  # [(position, token), h, m]
    heads = torch.arange(h, device=tokens.device)
    mixed = F.embedding_bag(
        (rows[:, :, None] * h + heads).reshape(batch, before * h),  # out_tab rows of each example
        out_tab.reshape(-1, d_model),
        per_sample_weights=pattern[:before].permute(1, 0, 2).reshape(batch, before * h),
        mode="sum",
    )
    f_rows = torch.cat([torch.einsum("m,hmd,hdn->hn", x_f, W_V, W_O), x_f[None]])
    f_weights = torch.cat([pattern[before], pattern.new_ones(batch, 1)], dim=1)  # [batch, h + 1]
    return torch.addmm(mixed, f_weights, f_rows)
