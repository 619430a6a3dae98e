"""The fast exact training model for one-layer modular-arithmetic transformers.

Inputs are "a b =" ('=' is token p). A one-layer model's loss only needs the final position, and
there the residual stream starts as the constant W_E[=] + W_pos[2], so:
- each head's query is one constant vector;
- keys and values of positions 0 and 1 depend on one token each, so they come from small
  per-token tables rebuilt every step and gathered by a one-hot matmul (whose backward is a
  matmul, not a slow scatter).
The result equals the TransformerLens model's final-position logits to fp32 rounding (tested
against the 4.x bridge), at about a quarter of the FLOPs.

Parameter names and shapes follow TransformerLens (row-vector convention), so `state_dict()` is a
legacy HookedTransformer state dict that loads into the bridge: see `alignlab.bridge`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a one-layer, attention + MLP, no-LayerNorm transformer on "a b =" inputs."""

    p: int
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"
    # Zhong et al.'s attention rate: pattern = rate * softmax + (1 - rate) * uniform.
    attn_rate: float = 1.0
    n_ctx: int = 3

    def __post_init__(self):
        if self.act_fn not in ACTIVATIONS:
            raise ValueError(f"act_fn {self.act_fn!r} is not one of {sorted(ACTIVATIONS)}")

    @property
    def d_vocab(self) -> int:
        return self.p + 1  # tokens 0..p-1 and '='

    @property
    def d_vocab_out(self) -> int:
        return self.p

    @property
    def eq_token(self) -> int:
        return self.p

    def to_dict(self) -> dict:
        return asdict(self)


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """TransformerLens names and shapes of every parameter."""
    h, m, dh, mlp = cfg.n_heads, cfg.d_model, cfg.d_head, cfg.d_mlp
    return {
        "embed.W_E": (cfg.d_vocab, m),
        "pos_embed.W_pos": (cfg.n_ctx, m),
        "blocks.0.attn.W_Q": (h, m, dh),
        "blocks.0.attn.W_K": (h, m, dh),
        "blocks.0.attn.W_V": (h, m, dh),
        "blocks.0.attn.W_O": (h, dh, m),
        "blocks.0.mlp.W_in": (m, mlp),
        "blocks.0.mlp.b_in": (mlp,),
        "blocks.0.mlp.W_out": (mlp, m),
        "blocks.0.mlp.b_out": (m,),
        "unembed.W_U": (m, cfg.d_vocab_out),
    }


def init_params(cfg: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """Initialise as Nanda et al.'s released code does.

    Every weight ~ randn / sqrt(d_model), except W_U ~ randn / sqrt(d_vocab); biases zero.
    Drawn in the fixed order of `param_shapes` from a generator seeded by `seed`.
    """
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if ".b_" in name:
            params[name] = torch.zeros(shape)
            continue
        scale = cfg.d_vocab if name == "unembed.W_U" else cfg.d_model
        params[name] = torch.randn(shape, generator=gen) / math.sqrt(scale)
    return params


class _Holder(nn.Module):
    """A named group of parameters, so that names read `blocks.0.attn.W_Q` as in TransformerLens."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        for name, value in tensors.items():
            self.register_parameter(name, nn.Parameter(value.clone()))


class FinalPositionTransformer(nn.Module):
    """Exact final-position logits of the one-layer TransformerLens model, fast."""

    def __init__(self, cfg: ModelConfig, params: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.cfg = cfg
        params = init_params(cfg, seed=0) if params is None else params
        check_params(cfg, params)
        groups: dict[str, dict[str, torch.Tensor]] = {}
        for name, value in params.items():
            prefix, leaf = name.rsplit(".", 1)
            groups.setdefault(prefix, {})[leaf] = value
        self.embed = _Holder(groups["embed"])
        self.pos_embed = _Holder(groups["pos_embed"])
        self.blocks = nn.ModuleList(
            [
                nn.ModuleDict(
                    {
                        "attn": _Holder(groups["blocks.0.attn"]),
                        "mlp": _Holder(groups["blocks.0.mlp"]),
                    }
                )
            ]
        )
        self.unembed = _Holder(groups["unembed"])

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits [batch, p] at the '=' position for inputs "a b =" (a, b: [batch] ints)."""
        cfg = self.cfg
        attn, mlp = self.blocks[0]["attn"], self.blocks[0]["mlp"]
        W_E, W_pos = self.embed.W_E, self.pos_embed.W_pos
        h, dh = cfg.n_heads, cfg.d_head

        x_eq = W_E[cfg.eq_token] + W_pos[2]  # the residual stream at '=' (constant)
        q = torch.einsum("m,hmd->hd", x_eq, attn.W_Q)
        k_dot_q = torch.einsum("hmd,hd->mh", attn.W_K, q) / math.sqrt(dh)  # [m, h]
        W_V = attn.W_V.permute(1, 0, 2).reshape(cfg.d_model, h * dh)  # [m, h*dh]

        # Per-token tables for positions 0 and 1: [p, h scores | h*dh values].
        tables = [W_E[: cfg.p] + W_pos[pos] for pos in (0, 1)]
        tables = [torch.cat([x @ k_dot_q, x @ W_V], dim=1) for x in tables]
        gathered = [
            F.one_hot(tok, cfg.p).to(x_eq.dtype) @ table
            for tok, table in zip((a, b), tables, strict=True)
        ]
        batch = a.shape[0]
        scores = torch.stack(
            [gathered[0][:, :h], gathered[1][:, :h], (x_eq @ k_dot_q).expand(batch, h)], dim=-1
        )  # [batch, h, 3]
        pattern = scores.softmax(dim=-1)
        if cfg.attn_rate != 1.0:
            pattern = cfg.attn_rate * pattern + (1.0 - cfg.attn_rate) / cfg.n_ctx
        values = torch.stack(
            [
                gathered[0][:, h:].view(batch, h, dh),
                gathered[1][:, h:].view(batch, h, dh),
                (x_eq @ W_V).view(1, h, dh).expand(batch, h, dh),
            ],
            dim=2,
        )  # [batch, h, 3, dh]
        z = (pattern.unsqueeze(-1) * values).sum(dim=2)  # [batch, h, dh]
        resid_mid = x_eq + z.reshape(batch, h * dh) @ attn.W_O.reshape(h * dh, cfg.d_model)
        post = ACTIVATIONS[cfg.act_fn](resid_mid @ mlp.W_in + mlp.b_in)
        resid_post = resid_mid + post @ mlp.W_out + mlp.b_out
        return resid_post @ self.unembed.W_U

    def params(self) -> dict[str, torch.Tensor]:
        """Detached copies of the parameters under their TransformerLens names."""
        return {name: p.detach().clone() for name, p in self.named_parameters()}


def check_params(cfg: ModelConfig, params: dict[str, torch.Tensor]) -> None:
    """Raise a clear error if `params` is not a full set of this config's parameters."""
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


def final_position_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in float64: at train losses near 1e-7, float32 is too coarse."""
    return F.cross_entropy(logits.double(), labels)
