"""Load alignlab weights into a TransformerLens 4.x `TransformerBridge` for analysis.

Training uses the fast `FinalPositionTransformer` (or the general `alignlab.transformer` for
deeper models and reward models); interpretability (caches, hooks, patching) uses the bridge, which
runs the full sequence with TransformerLens hook names (`hook_embed`, `blocks.0.attn.hook_pattern`,
`blocks.0.mlp.hook_post`, ...). Any config with the fields `alignlab.transformer` reads works: the
modular-arithmetic `ModelConfig` (one or more layers) and the reward model's `RMConfig` (pre-LN,
a scalar head as d_vocab_out = 1). Parameters are stored under legacy HookedTransformer names, so
they go through `convert_tl_checkpoint`.

TransformerLens is imported inside functions: importing it pulls in `transformers` (seconds),
and most of alignlab never needs it.

Pitfalls of the 4.x bridge handled here:
- the native attention has Q/K/V/O biases, which our model lacks: they are set to zero and
  frozen (requires_grad False), so an optimiser or gradient check cannot move them;
- the unembed bias is a zero buffer the bridge adds itself, never a parameter;
- `named_parameters()` names (`layers.0._original_component...`) differ from `state_dict()`
  keys (`blocks.0.attn.q.weight`): `tl_parameters` maps back to TransformerLens names;
- `return_type="loss"` is next-token loss over the sequence; ours is `final_loss`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from alignlab.checkpoints import load_weights
from alignlab.models import ModelConfig, final_position_loss
from alignlab.transformer import check_params, param_shapes

if TYPE_CHECKING:
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

_UNEMBED_BIAS = "unembed.bias"


def _zero_frozen(n_layers: int) -> list[str]:
    """Bridge parameters that our models do not have: kept at zero and frozen."""
    return [f"blocks.{i}.attn.{x}.bias" for i in range(n_layers) for x in "qkvo"]


def bridge_config(cfg, dtype: torch.dtype = torch.float32) -> TransformerBridgeConfig:
    """The TransformerBridgeConfig of one of our models (fields as `alignlab.transformer` reads).

    `seed` is fixed so that building the bridge neither depends on nor advances torch's global
    RNG (boot_native forks the RNG when seeded); the random init is overwritten anyway.
    """
    from transformer_lens.config import TransformerBridgeConfig

    if isinstance(cfg, ModelConfig) and cfg.n_ctx != 3:
        raise ValueError(f"alignlab models read 'a b =' (n_ctx 3), got n_ctx={cfg.n_ctx}")
    return TransformerBridgeConfig(
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        n_layers=cfg.n_layers,
        n_ctx=cfg.n_ctx,
        n_heads=cfg.n_heads,
        d_vocab=cfg.d_vocab,
        d_vocab_out=cfg.d_vocab_out,
        d_mlp=cfg.d_mlp,
        act_fn=cfg.act_fn,
        normalization_type="LN" if cfg.normalization == "LN" else None,
        positional_embedding_type="standard",
        attn_only=False,
        # tracr-style compiled models (experiments/circuit_discovery) attend both ways
        attention_dir=getattr(cfg, "attention_dir", "causal"),
        seed=0,
        dtype=dtype,
    )


def bridge_state_dict(
    params: dict[str, torch.Tensor], tl_cfg: TransformerBridgeConfig
) -> dict[str, torch.Tensor]:
    """Legacy TransformerLens names -> bridge state dict, with the absent biases as zeros."""
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    converted = convert_tl_checkpoint(params, tl_cfg)
    like = params["embed.W_E"]
    for name in _zero_frozen(tl_cfg.n_layers):
        converted[name] = torch.zeros(
            converted[name.replace(".bias", ".weight")].shape[0],
            dtype=like.dtype,
            device=like.device,
        )
    converted[_UNEMBED_BIAS] = torch.zeros(tl_cfg.d_vocab_out, dtype=like.dtype, device=like.device)
    return converted


def to_bridge(
    params: dict[str, torch.Tensor], cfg, device: str | torch.device = "cpu"
) -> TransformerBridge:
    """A TransformerBridge in eval mode holding exactly `params` (dtype kept, e.g. float64)."""
    from transformer_lens.model_bridge import TransformerBridge

    check_params(cfg, params)
    dtype = params["embed.W_E"].dtype
    tl_cfg = bridge_config(cfg, dtype)
    bridge = TransformerBridge.boot_native(tl_cfg, device=device, dtype=dtype)
    state = {k: v.to(device) for k, v in bridge_state_dict(params, tl_cfg).items()}
    result = bridge.load_state_dict(state, strict=True)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(f"bridge state dict mismatch: {result}")
    _freeze_zero_biases(bridge, cfg.n_layers)
    if getattr(cfg, "attn_rate", 1.0) != 1.0:
        _add_attn_rate_hook(bridge, cfg.attn_rate)
    return bridge.eval()


def _freeze_zero_biases(bridge: TransformerBridge, n_layers: int) -> None:
    """Our models have no attention biases: keep the bridge's at zero and out of any optimiser."""
    state = bridge.state_dict(keep_vars=True)
    for name in _zero_frozen(n_layers):
        state[name].requires_grad_(False)
    if isinstance(state[_UNEMBED_BIAS], torch.nn.Parameter):  # a buffer in TL 4.3
        state[_UNEMBED_BIAS].requires_grad_(False)


def _add_attn_rate_hook(bridge: TransformerBridge, rate: float) -> None:
    """Zhong et al.'s attention rate as a permanent hook on `blocks.0.attn.hook_pattern`.

    pattern = rate * softmax + (1 - rate) * uniform over the causal positions. At the final
    position all n_ctx positions are visible, which matches the fast model's (1 - rate) / n_ctx.
    The native attention applies hook_pattern before the value matmul, so the hook changes the
    output, and caches record the mixed pattern that the model actually uses.
    """

    def mix(pattern: torch.Tensor, hook) -> torch.Tensor:
        n = pattern.shape[-1]
        causal = torch.ones(n, n, dtype=pattern.dtype, device=pattern.device).tril()
        uniform = causal / causal.sum(dim=-1, keepdim=True)
        return rate * pattern + (1.0 - rate) * uniform

    bridge.blocks[0].attn.hook_pattern.add_perma_hook(mix)


def load_bridge(
    checkpoint_path: str | Path, device: str | torch.device = "cpu", config_class=ModelConfig
):
    """(bridge, step, config) of a weights checkpoint written by `save_weights`.

    `config_class` builds the config from the checkpoint's metadata (e.g. the reward model's
    `RMConfig`)."""
    params, step, model_cfg = load_weights(Path(checkpoint_path))
    cfg = config_class(**model_cfg)
    return to_bridge(params, cfg, device=device), step, cfg


def tokens(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    """The [batch, 3] token ids of "a b =" ('=' is token p)."""
    return torch.stack([a, b, torch.full_like(a, p)], dim=1)


def final_logits(bridge: TransformerBridge, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[batch, p] logits at the '=' position: the only position our loss reads."""
    p = bridge.cfg.d_vocab_out
    return bridge(tokens(a, b, p), return_type="logits")[:, -1, :]


def final_loss(
    bridge: TransformerBridge, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """The training loss (float64 CE at '='), not the bridge's next-token loss."""
    return final_position_loss(final_logits(bridge, a, b), labels)


def _from_bridge_layout(name: str, t: torch.Tensor, cfg) -> torch.Tensor:
    """Inverse of convert_tl_checkpoint's tensor layout for one TransformerLens name."""
    h, dh = cfg.n_heads, cfg.d_head
    leaf = name.rsplit(".", 1)[1]
    if leaf in ("W_Q", "W_K", "W_V"):  # [(h dh), m] -> [h, m, dh]
        return t.reshape(h, dh, cfg.d_model).transpose(1, 2)
    if leaf == "W_O":  # [m, (h dh)] -> [h, dh, m]
        return t.reshape(cfg.d_model, h, dh).permute(1, 2, 0)
    if leaf in ("W_in", "W_out", "W_U"):
        return t.T
    return t


def tl_parameters(bridge: TransformerBridge, cfg) -> dict[str, tuple[torch.nn.Parameter, str]]:
    """TransformerLens name -> (the bridge's Parameter, its state-dict key), for our parameters.

    Found through state_dict(keep_vars=True), whose keys follow convert_tl_checkpoint, unlike
    named_parameters(). The Parameters are in bridge layout; see `tl_weights` / `tl_grads`.
    """
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    state = bridge.state_dict(keep_vars=True)
    found = {}
    for name, shape in param_shapes(cfg).items():
        (key,) = convert_tl_checkpoint({name: torch.empty(shape, device="meta")}, bridge.cfg)
        found[name] = (state[key], key)
    return found


def tl_weights(bridge: TransformerBridge, cfg) -> dict[str, torch.Tensor]:
    """The bridge's weights under TransformerLens names and shapes (detached copies)."""
    return {
        name: _from_bridge_layout(name, p.detach(), cfg).clone()
        for name, (p, _) in tl_parameters(bridge, cfg).items()
    }


def tl_grads(bridge: TransformerBridge, cfg) -> dict[str, torch.Tensor | None]:
    """The bridge's .grad of each parameter under TransformerLens names and shapes."""
    return {
        name: None if p.grad is None else _from_bridge_layout(name, p.grad, cfg)
        for name, (p, _) in tl_parameters(bridge, cfg).items()
    }
