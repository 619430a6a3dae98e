"""A small transformer reward model with a scalar head read at the final (EOS) token.

The general causal transformer of `alignlab.transformer` (TransformerLens names, pre-LN by
default) with a one-dimensional output: unembed.W_U [d_model, 1] is the scalar head (the bridge's
"logit" of a one-token output vocabulary). No attention or head biases (a constant offset is
removed by recentring anyway).

Sequences are right-padded; attention is causal, so padding after EOS cannot change the residual
stream at EOS, and the reward is read there, by index, never at the last position.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from alignlab.transformer import Transformer, check_choices, param_shapes

__all__ = ["RMConfig", "RewardModel", "init_params", "n_params", "param_shapes", "score"]


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
        check_choices(self)

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_vocab_out(self) -> int:
        return 1  # the scalar head

    def to_dict(self) -> dict:
        return asdict(self)


def n_params(cfg: RMConfig) -> int:
    return sum(math.prod(s) for s in param_shapes(cfg).values())


def init_params(cfg: RMConfig, seed: int) -> dict[str, torch.Tensor]:
    """Weights ~ N(0, 1 / fan_in), LayerNorm scales 1, biases 0; drawn in `param_shapes` order."""
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


class RewardModel(Transformer):
    """`forward(tokens, eos)` -> [batch] rewards at EOS; `all_rewards` reads every position."""

    def __init__(self, cfg: RMConfig, params: dict[str, torch.Tensor] | None = None):
        super().__init__(cfg, init_params(cfg, seed=0) if params is None else params)

    def all_rewards(self, tokens: torch.Tensor) -> torch.Tensor:
        """[batch, pos] the scalar head at every position (only EOS is the reward)."""
        return self.logits(tokens)[..., 0]

    def forward(self, tokens: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
        """[batch] rewards read at each sequence's EOS index (right padding is ignored)."""
        seq = int(eos.max().item()) + 1  # positions after the last EOS never matter (causal)
        return (self.residual(tokens[:, :seq], at=eos.long()) @ self.p("unembed.W_U"))[:, 0]


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
