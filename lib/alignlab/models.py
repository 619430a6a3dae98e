"""The fast exact training model for one-layer modular-arithmetic transformers.

Inputs are "a b =" ('=' is token p). A one-layer model's loss only needs the final position, and
there the residual stream starts as the constant W_E[=] + W_pos[2], so:
- each head's query is one constant vector;
- attention scores and each head's output (value times W_O) at positions 0 and 1 depend on one
  token each, so they come from small per-token tables rebuilt every step and gathered (an
  embedding bag weighted by the attention pattern);
- in training, the MLP and unembedding run forward and backward in cache-sized row chunks
  (`alignlab.fused_head`).
The result equals the TransformerLens model's final-position logits to fp32 rounding (tested
against the 4.x bridge), at under a quarter of the FLOPs.

Deeper or LayerNorm models (Power et al.'s 2-layer decoder) run the general full-sequence
transformer instead (`ModularDecoder`, from `alignlab.transformer`); `build_model` picks.
Parameter names and shapes follow TransformerLens (row-vector convention), so `state_dict()` is a
legacy HookedTransformer state dict that loads into the bridge: see `alignlab.bridge`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from alignlab.final_position import attention_stream, training_bag
from alignlab.fused_head import fused_head_loss
from alignlab.transformer import (
    ACTIVATIONS,
    Transformer,
    check_choices,
    check_params,
    param_shapes,
    register_parameters,
)

__all__ = [
    "ACTIVATIONS",
    "FinalPositionTransformer",
    "ModelConfig",
    "ModularDecoder",
    "build_model",
    "check_params",
    "final_position_loss",
    "init_params",
    "param_shapes",
]


@dataclass(frozen=True)
class ModelConfig:
    """Shape of an attention + MLP transformer on "a b =" inputs (default: one layer, no LN)."""

    p: int
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"
    # Zhong et al.'s attention rate: pattern = rate * softmax + (1 - rate) * uniform.
    attn_rate: float = 1.0
    n_ctx: int = 3
    n_layers: int = 1
    normalization: str = "none"  # "LN": pre-norm, as TransformerLens (Power et al.'s decoder)

    def __post_init__(self):
        check_choices(self)
        if self.attn_rate != 1.0 and not self.is_one_layer:
            raise ValueError("attn_rate is implemented for the one-layer, no-LN model only")

    @property
    def is_one_layer(self) -> bool:
        """The shape the fast exact model computes (one layer, no LayerNorm)."""
        return self.n_layers == 1 and self.normalization == "none"

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


def init_params(cfg: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """Initialise as Nanda et al.'s released code does.

    Every weight ~ randn / sqrt(d_model), except W_U ~ randn / sqrt(d_vocab); biases zero;
    LayerNorm scales one. Drawn in the fixed order of `param_shapes` from a generator seeded by
    `seed`, so a one-layer model's weights do not depend on whether deeper models exist.
    """
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if leaf == "w":
            params[name] = torch.ones(shape)
            continue
        if leaf.startswith("b"):
            params[name] = torch.zeros(shape)
            continue
        scale = cfg.d_vocab if name == "unembed.W_U" else cfg.d_model
        params[name] = torch.randn(shape, generator=gen) / math.sqrt(scale)
    return params


class FinalPositionTransformer(nn.Module):
    """Exact final-position logits of the one-layer TransformerLens model, fast."""

    def __init__(self, cfg: ModelConfig, params: dict[str, torch.Tensor] | None = None):
        super().__init__()
        if not cfg.is_one_layer:
            raise ValueError(
                f"the fast model is one layer without LayerNorm (got n_layers {cfg.n_layers}, "
                f"normalization {cfg.normalization!r}): use build_model"
            )
        self.cfg = cfg
        params = init_params(cfg, seed=0) if params is None else params
        check_params(cfg, params)
        register_parameters(self, params)

    def resid_mid(self, a: torch.Tensor, b: torch.Tensor, training: bool = False) -> torch.Tensor:
        """The residual stream after attention at '=' [batch, d_model] for inputs "a b =", from
        per-token tables (`alignlab.final_position`); `training`: (a, b) is the full batch that
        comes back every step, so its bag layout is built once (CPU)."""
        attn, cfg = self.get_submodule("blocks.0.attn"), self.cfg
        weights = {"W_E": self.embed.W_E, "W_pos": self.pos_embed.W_pos}
        weights.update({f"W_{n}": getattr(attn, f"W_{n}") for n in "QKVO"})
        tokens = torch.stack([a, b], dim=1)
        bag = training_bag(self, (a, b), tokens, cfg.p, cfg.n_heads) if training else None
        return attention_stream(tokens, cfg.eq_token, cfg.p, weights, cfg.attn_rate, bag)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits [batch, p] at the '=' position for inputs "a b =" (a, b: [batch] ints)."""
        mlp = self.get_submodule("blocks.0.mlp")
        resid_mid = self.resid_mid(a, b)
        post = ACTIVATIONS[self.cfg.act_fn](resid_mid @ mlp.W_in + mlp.b_in)
        return (resid_mid + post @ mlp.W_out + mlp.b_out) @ self.unembed.W_U

    def loss(self, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`final_position_loss(self(a, b), labels)` for training: with ReLU, the MLP and
        unembedding run forward and backward in cache-sized chunks (`alignlab.fused_head`)."""
        if self.cfg.act_fn != "relu":
            return final_position_loss(self(a, b), labels)
        mlp = self.get_submodule("blocks.0.mlp")
        return fused_head_loss(
            self.resid_mid(a, b, training=True),
            *(mlp.W_in, mlp.b_in, mlp.W_out, mlp.b_out, self.unembed.W_U),
            labels,
        )

    def params(self) -> dict[str, torch.Tensor]:
        """Detached copies of the parameters under their TransformerLens names."""
        return {name: p.detach().clone() for name, p in self.named_parameters()}


class ModularDecoder(Transformer):
    """The general transformer on "a b =", logits at '=' (any depth, optional LayerNorm)."""

    def __init__(self, cfg: ModelConfig, params: dict[str, torch.Tensor] | None = None):
        super().__init__(cfg, init_params(cfg, seed=0) if params is None else params)
        if cfg.attn_rate != 1.0:
            raise ValueError("ModularDecoder has no attention rate; use FinalPositionTransformer")

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits [batch, p] at the '=' position, from the full causal sequence."""
        tokens = torch.stack([a, b, torch.full_like(a, self.cfg.eq_token)], dim=1)
        return self.residual(tokens, at=torch.full_like(a, 2)) @ self.p("unembed.W_U")


def build_model(
    cfg: ModelConfig, params: dict[str, torch.Tensor]
) -> FinalPositionTransformer | ModularDecoder:
    """The fast exact model where it applies (one layer, no LN), else the general decoder."""
    return (
        FinalPositionTransformer(cfg, params) if cfg.is_one_layer else ModularDecoder(cfg, params)
    )


def final_position_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in float64: at train losses near 1e-7, float32 is too coarse."""
    return F.cross_entropy(logits.double(), labels)
