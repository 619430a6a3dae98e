"""A small transformer reward model with a scalar head read at the final (EOS) token.

Parameters use TransformerLens names and the row-vector convention (DESIGN.md), so that the
weights load into a TransformerLens 4.x bridge for analysis: embed.W_E [d_vocab, d_model],
pos_embed.W_pos [n_ctx, d_model], per block ln1.w/b, attn.W_Q/W_K/W_V [n_heads, d_model, d_head],
attn.W_O [n_heads, d_head, d_model], ln2.w/b, mlp.W_in/b_in/W_out/b_out, then ln_final.w/b and
the scalar head unembed.W_U [d_model, 1] (the bridge's "logit" of a one-token output vocabulary).
No attention or head biases (a constant offset is removed by recentring anyway).

Sequences are right-padded; attention is causal, so padding after EOS cannot change the residual
stream at EOS, and the reward is read there, by index, never at the last position.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RMConfig:
    d_vocab: int
    n_ctx: int
    d_model: int = 16
    n_layers: int = 2
    n_heads: int = 2
    d_mlp: int = 64
    act_fn: str = "gelu"
    normalization: str = "LN"  # "LN" (pre-norm, as GPT-2) or "none"

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.act_fn not in ("gelu", "relu"):
            raise ValueError(f"act_fn {self.act_fn!r} is not one of ['gelu', 'relu']")
        if self.normalization not in ("LN", "none"):
            raise ValueError(f"normalization {self.normalization!r} is not one of ['LN', 'none']")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


def param_shapes(cfg: RMConfig) -> dict[str, tuple[int, ...]]:
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
    shapes["unembed.W_U"] = (m, 1)
    return shapes


def n_params(cfg: RMConfig) -> int:
    return sum(math.prod(s) for s in param_shapes(cfg).values())


def init_params(cfg: RMConfig, seed: int) -> dict[str, torch.Tensor]:
    """GPT-2 style: weights ~ N(0, 0.02^2)-like scaled by 1/sqrt(d_model), LN w = 1, biases 0."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if leaf == "w":
            params[name] = torch.ones(shape)
        elif leaf.startswith("b"):
            params[name] = torch.zeros(shape)
        else:
            fan_in = shape[-2] if len(shape) >= 2 else cfg.d_model
            params[name] = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    return params


class RewardModel(nn.Module):
    """Full-sequence causal transformer; `forward(tokens, eos)` -> [batch] rewards at EOS."""

    def __init__(self, cfg: RMConfig, params: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.cfg = cfg
        params = init_params(cfg, seed=0) if params is None else params
        shapes = param_shapes(cfg)
        if set(params) != set(shapes):
            raise ValueError(f"parameter names differ: {sorted(set(params) ^ set(shapes))}")
        for name, shape in shapes.items():
            if tuple(params[name].shape) != shape:
                raise ValueError(f"{name}: shape {tuple(params[name].shape)}, expected {shape}")
        self._names = list(shapes)
        self.weights = nn.ParameterDict(
            {n.replace(".", "__"): nn.Parameter(params[n].clone().float()) for n in shapes}
        )

    def p(self, name: str) -> torch.Tensor:
        return self.weights[name.replace(".", "__")]

    def params(self) -> dict[str, torch.Tensor]:
        """Detached copies under TransformerLens names."""
        return {n: self.p(n).detach().clone() for n in self._names}

    def _ln(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        if self.cfg.normalization == "none":
            return x
        return F.layer_norm(x, (x.shape[-1],), self.p(f"{prefix}.w"), self.p(f"{prefix}.b"), 1e-5)

    def residual(self, tokens: torch.Tensor) -> torch.Tensor:
        """[batch, pos, d_model] residual stream after ln_final."""
        cfg = self.cfg
        bsz, seq = tokens.shape
        m = cfg.d_model
        x = self.p("embed.W_E")[tokens] + self.p("pos_embed.W_pos")[:seq]
        act = F.gelu if cfg.act_fn == "gelu" else F.relu
        for i in range(cfg.n_layers):
            b = f"blocks.{i}"
            h = self._ln(x, f"{b}.ln1")
            # one fused matmul for Q, K, V: [m, (3 h d)] from the [h, m, d] weights
            w_qkv = torch.cat(
                [self.p(f"{b}.attn.W_{n}").permute(1, 0, 2).reshape(m, -1) for n in "QKV"], dim=1
            )
            qkv = (h @ w_qkv).view(bsz, seq, 3, cfg.n_heads, cfg.d_head).permute(2, 0, 3, 1, 4)
            z = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
            z = z.transpose(1, 2).reshape(bsz, seq, -1)  # [b, p, (h d)]
            x = x + z @ self.p(f"{b}.attn.W_O").reshape(-1, m)
            h = self._ln(x, f"{b}.ln2")
            pre = h @ self.p(f"{b}.mlp.W_in") + self.p(f"{b}.mlp.b_in")
            x = x + act(pre) @ self.p(f"{b}.mlp.W_out") + self.p(f"{b}.mlp.b_out")
        return self._ln(x, "ln_final")

    def all_rewards(self, tokens: torch.Tensor) -> torch.Tensor:
        """[batch, pos] the scalar head at every position (only EOS is the reward)."""
        return (self.residual(tokens) @ self.p("unembed.W_U"))[..., 0]

    def forward(self, tokens: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
        """[batch] rewards read at each sequence's EOS index (right padding is ignored)."""
        seq = int(eos.max().item()) + 1  # positions after the last EOS never matter (causal)
        rewards = self.all_rewards(tokens[:, :seq])
        return rewards.gather(1, eos[:, None].long())[:, 0]


@torch.no_grad()
def score(model: RewardModel, tokens, eos, batch_size: int = 2048) -> torch.Tensor:
    """Rewards of many sequences (no grad), float64 on the CPU, in the input order.

    Sequences are batched by length (sorted by EOS index) and each batch is cut after its last
    EOS, which the causal mask makes exact and which saves about half of the work.
    """
    model.eval()
    tokens = torch.as_tensor(tokens).long()
    eos = torch.as_tensor(eos).long()
    order = torch.argsort(eos, stable=True)
    out = torch.empty(len(eos), dtype=torch.float64)
    for start in range(0, len(eos), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = model(tokens[idx], eos[idx]).double().cpu()
    return out
