"""The general causal transformer: the reference model path, with TransformerLens names.

The fast one-layer model (`alignlab.models.FinalPositionTransformer`) only applies to one layer
without LayerNorm. Everything else runs here: reward models (a scalar head read at EOS,
`alignlab.preference.model`) and Power et al.'s 2-layer decoder (`alignlab.models.ModularDecoder`).

A config is any object with the fields d_vocab, d_vocab_out, n_ctx, d_model, n_layers, n_heads,
d_head, d_mlp, act_fn and normalization ("LN": pre-norm as GPT-2 and TransformerLens, or "none").
Parameters follow TransformerLens (row-vector convention): embed.W_E [d_vocab, d_model],
pos_embed.W_pos [n_ctx, d_model], per block ln1.w/b, attn.W_Q/W_K/W_V [n_heads, d_model, d_head],
attn.W_O [n_heads, d_head, d_model], ln2.w/b, mlp.W_in/b_in/W_out/b_out, then ln_final.w/b and
unembed.W_U [d_model, d_vocab_out]. There are no attention or unembedding biases. The modules are
nested so that `named_parameters()` and `state_dict()` keys ARE these names, and a state dict
loads into a TransformerLens 4.x bridge (`alignlab.bridge.to_bridge`).
"""

from __future__ import annotations

import math
from operator import attrgetter

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}
NORMALIZATIONS = ("LN", "none")


def check_choices(cfg) -> None:
    """Raise a clear error for an activation or normalization this module does not implement."""
    if cfg.normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization {cfg.normalization!r} is not one of {NORMALIZATIONS}")
    if cfg.act_fn not in ACTIVATIONS:
        raise ValueError(f"act_fn {cfg.act_fn!r} is not one of {sorted(ACTIVATIONS)}")


def param_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """TransformerLens names and shapes of every parameter, in a fixed order."""
    m, h, dh, mlp = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    ln = cfg.normalization == "LN"
    shapes: dict[str, tuple[int, ...]] = {
        "embed.W_E": (cfg.d_vocab, m),
        "pos_embed.W_pos": (cfg.n_ctx, m),
    }
    for i in range(cfg.n_layers):
        b = f"blocks.{i}"
        if ln:
            shapes |= {f"{b}.ln1.w": (m,), f"{b}.ln1.b": (m,)}
        shapes |= {
            f"{b}.attn.W_Q": (h, m, dh),
            f"{b}.attn.W_K": (h, m, dh),
            f"{b}.attn.W_V": (h, m, dh),
            f"{b}.attn.W_O": (h, dh, m),
        }
        if ln:
            shapes |= {f"{b}.ln2.w": (m,), f"{b}.ln2.b": (m,)}
        shapes |= {
            f"{b}.mlp.W_in": (m, mlp),
            f"{b}.mlp.b_in": (mlp,),
            f"{b}.mlp.W_out": (mlp, m),
            f"{b}.mlp.b_out": (m,),
        }
    if ln:
        shapes |= {"ln_final.w": (m,), "ln_final.b": (m,)}
    shapes["unembed.W_U"] = (m, cfg.d_vocab_out)
    return shapes


def check_params(cfg, params: dict[str, torch.Tensor]) -> None:
    """Raise a clear error if `params` is not exactly this config's set of parameters."""
    expected = param_shapes(cfg)
    missing = sorted(set(expected) - set(params))
    extra = sorted(set(params) - set(expected))
    if missing or extra:
        raise ValueError(
            f"parameters do not match the model: missing {missing}, unexpected {extra}"
        )
    for name, shape in expected.items():
        if tuple(params[name].shape) != shape:
            raise ValueError(
                f"parameter {name} has shape {tuple(params[name].shape)}, expected {shape}"
            )


def register_parameters(module: nn.Module, params: dict[str, torch.Tensor]) -> None:
    """Register copies of `params` on `module` under their dotted names (as nested modules)."""
    for name, value in params.items():
        *path, leaf = name.split(".")
        owner = module
        for part in path:
            if part not in owner._modules:
                owner.add_module(part, nn.Module())
            owner = owner._modules[part]
        owner.register_parameter(leaf, nn.Parameter(value.detach().clone()))


class Transformer(nn.Module):
    """Full-sequence causal transformer. Subclasses define `forward` for their task."""

    def __init__(self, cfg, params: dict[str, torch.Tensor]):
        super().__init__()
        check_choices(cfg)
        check_params(cfg, params)
        self.cfg = cfg
        self._names = list(param_shapes(cfg))
        register_parameters(self, {name: params[name] for name in self._names})

    def p(self, name: str) -> torch.Tensor:
        """The parameter with this TransformerLens name. Read as an attribute, not through
        `get_parameter` (which rejects plain tensors), so that `torch.func.functional_call` can
        run the model on other weights (as `alignlab.preference.stacked` does)."""
        return attrgetter(name)(self)

    def params(self) -> dict[str, torch.Tensor]:
        """Detached copies of the parameters under their TransformerLens names."""
        return {name: self.p(name).detach().clone() for name in self._names}

    def _ln(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        if self.cfg.normalization == "none":
            return x
        return F.layer_norm(x, (x.shape[-1],), self.p(f"{prefix}.w"), self.p(f"{prefix}.b"), 1e-5)

    def _attention(self, normed: torch.Tensor, block: str, at: torch.Tensor | None):
        """Causal attention's output [batch, pos, m] at every position, or with `at` [batch]
        (one position per row) [batch, m] at that position only (keys and values up to it)."""
        cfg = self.cfg
        bsz, seq, m = normed.shape
        h, dh = cfg.n_heads, cfg.d_head
        w = {n: self.p(f"{block}.attn.W_{n}").permute(1, 0, 2).reshape(m, h * dh) for n in "QKV"}
        W_O = self.p(f"{block}.attn.W_O").reshape(h * dh, m)
        if at is None:  # one fused matmul for Q, K and V
            qkv = normed @ torch.cat([w["Q"], w["K"], w["V"]], dim=1)
            q, k, v = qkv.view(bsz, seq, 3, h, dh).permute(2, 0, 3, 1, 4)
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return z.transpose(1, 2).reshape(bsz, seq, h * dh) @ W_O
        k, v = (normed @ torch.cat([w["K"], w["V"]], dim=1)).view(bsz, seq, 2, h, dh).unbind(2)
        q = normed[torch.arange(bsz, device=at.device), at] @ w["Q"]  # [batch, h * dh]
        visible = torch.arange(seq, device=at.device) <= at[:, None]  # causal, from `at`
        # One query per row: products and sums over [batch, pos, head], ~5x faster on CPU than
        # scaled_dot_product_attention's kernels for a query of length 1 (forward and backward).
        scores = (q.view(bsz, 1, h, dh) * k).sum(-1) / math.sqrt(dh)  # [batch, pos, head]
        pattern = scores.masked_fill(~visible[:, :, None], -math.inf).softmax(dim=1)
        z = (pattern[..., None] * v).sum(1)  # [batch, head, d_head]
        return z.reshape(bsz, h * dh) @ W_O

    def _mlp(self, x: torch.Tensor, block: str) -> torch.Tensor:
        pre = self._ln(x, f"{block}.ln2") @ self.p(f"{block}.mlp.W_in") + self.p(
            f"{block}.mlp.b_in"
        )
        act = ACTIVATIONS[self.cfg.act_fn](pre)
        return act @ self.p(f"{block}.mlp.W_out") + self.p(f"{block}.mlp.b_out")

    def residual(self, tokens: torch.Tensor, at: torch.Tensor | None = None) -> torch.Tensor:
        """The residual stream after ln_final: [batch, pos, d_model], or with `at` [batch]
        [batch, d_model] at position at[i] of row i.

        Causal attention means nothing after `at` matters there, and the last block is needed
        at `at` alone (its keys and values everywhere, its query, attention output and MLP at
        `at`): for a reward read at EOS this skips most of the last block's work.
        """
        x = self.p("embed.W_E")[tokens] + self.p("pos_embed.W_pos")[: tokens.shape[1]]
        for i in range(self.cfg.n_layers):
            block, last = f"blocks.{i}", i == self.cfg.n_layers - 1
            if at is not None and last:
                x = x[torch.arange(len(at), device=at.device), at] + self._attention(
                    self._ln(x, f"{block}.ln1"), block, at
                )
            else:
                x = x + self._attention(self._ln(x, f"{block}.ln1"), block, None)
            x = x + self._mlp(x, block)
        return self._ln(x, "ln_final")

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """[batch, pos, d_vocab_out]."""
        return self.residual(tokens) @ self.p("unembed.W_U")
