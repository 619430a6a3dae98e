"""The compiled zoo as bridges, its input domains and the program's answers on them."""

from __future__ import annotations

import itertools

import torch

from alignlab.bridge import bridge_config
from alignlab.models import init_params
from experiments.circuit_discovery.compiler import Compiled, compile_program
from experiments.circuit_discovery.programs import program
from experiments.circuit_discovery.rasp import run


def compiled(task: str) -> Compiled:
    return compile_program(program(task))


def to_bridge(model: Compiled, params: dict[str, torch.Tensor] | None = None):
    """A TransformerLens 4.x bridge (eval mode) holding the compiled weights (or `params` of the
    same shape, e.g. the random-weight null), attention biases included."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    params = model.params if params is None else params
    tl_cfg = bridge_config(model.cfg, params["embed.W_E"].dtype)
    bridge = TransformerBridge.boot_native(tl_cfg, dtype=params["embed.W_E"].dtype)
    result = bridge.load_state_dict(convert_tl_checkpoint(params, tl_cfg), strict=True)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(f"bridge state dict mismatch: {result}")
    return bridge.eval()


def domain(model: Compiled, length: int) -> list[tuple]:
    """Every input of one length the program accepts, in a fixed order."""
    if not 1 <= length <= model.program.max_len:
        raise ValueError(f"length {length} is outside 1..{model.program.max_len}")
    return list(itertools.product(model.program.vocab, repeat=length))


def answers(model: Compiled, sequences: list[tuple]) -> list[list]:
    """The program's output at every position of every sequence (None: no value)."""
    return [run(model.program.output, seq) for seq in sequences]


def random_params(model: Compiled, seed: int) -> dict[str, torch.Tensor]:
    """The null: the compiled model's shapes with the weights every trained model of the suite
    starts from (`alignlab.models.init_params`, Nanda et al.'s init; biases zero). No circuit is
    planted, so the compiled program's edges are a random subset of its graph."""
    params = init_params(model.cfg, seed)
    return {name: params.get(name, torch.zeros_like(like)) for name, like in model.params.items()}
