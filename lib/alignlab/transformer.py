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
        """The parameter with this TransformerLens name."""
        return self.get_parameter(name)

    def params(self) -> dict[str, torch.Tensor]:
        """Detached copies of the parameters under their TransformerLens names."""
        return {name: self.p(name).detach().clone() for name in self._names}

    def _ln(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        if self.cfg.normalization == "none":
            return x
        return F.layer_norm(x, (x.shape[-1],), self.p(f"{prefix}.w"), self.p(f"{prefix}.b"), 1e-5)

    def residual(self, tokens: torch.Tensor) -> torch.Tensor:
        """[batch, pos, d_model]: the residual stream after ln_final."""
        cfg = self.cfg
        bsz, seq = tokens.shape
        m, h, dh = cfg.d_model, cfg.n_heads, cfg.d_head
        act = ACTIVATIONS[cfg.act_fn]
        x = self.p("embed.W_E")[tokens] + self.p("pos_embed.W_pos")[:seq]
        for i in range(cfg.n_layers):
            b = f"blocks.{i}"
            normed = self._ln(x, f"{b}.ln1")
            # one fused matmul for Q, K and V: [m, (3 h dh)] from the [h, m, dh] weights
            w_qkv = torch.cat(
                [self.p(f"{b}.attn.W_{n}").permute(1, 0, 2).reshape(m, h * dh) for n in "QKV"],
                dim=1,
            )
            qkv = (normed @ w_qkv).view(bsz, seq, 3, h, dh).permute(2, 0, 3, 1, 4)
            z = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
            x = x + z.transpose(1, 2).reshape(bsz, seq, h * dh) @ self.p(f"{b}.attn.W_O").reshape(
                h * dh, m
            )
            normed = self._ln(x, f"{b}.ln2")
            pre = normed @ self.p(f"{b}.mlp.W_in") + self.p(f"{b}.mlp.b_in")
            x = x + act(pre) @ self.p(f"{b}.mlp.W_out") + self.p(f"{b}.mlp.b_out")
        return self._ln(x, "ln_final")

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """[batch, pos, d_vocab_out]."""
        return self.residual(tokens) @ self.p("unembed.W_U")
