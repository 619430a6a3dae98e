"""bench/reward_time.py times K stacked RMs against K separate ones: that is only a fair race if
the stacked step does exactly the separate steps' math. Checked in float64 on real pairs."""

import importlib.util
from pathlib import Path

import torch

from alignlab import optim
from alignlab.preference.env import Env, EnvConfig
from alignlab.preference.model import RewardModel, RMConfig, init_params

REPO = Path(__file__).resolve().parents[1]
ENV = EnvConfig()
CFG = RMConfig(d_vocab=ENV.d_vocab, n_ctx=ENV.n_ctx, d_model=8, n_layers=2, n_heads=2, d_mlp=16)


def _bench():
    spec = importlib.util.spec_from_file_location("reward_time", REPO / "bench/reward_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _models(seeds):
    return [RewardModel(CFG, init_params(CFG, s)).double() for s in seeds]


def test_a_stacked_step_is_each_rms_own_step():
    bench, seeds, batch = _bench(), [0, 1, 2], 6
    batches = bench._batches(Env(ENV), len(seeds), batch, seed=0)  # a different batch per RM
    alone = _models(seeds)
    for model, (both, eos) in zip(alone, batches, strict=True):
        opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
        bench.single_step(model, opt, batch)(both, eos)
    stacked_models = _models(seeds)
    step, stack = bench.stacked_step(stacked_models, batch)
    step(torch.stack([b for b, _ in batches]), torch.stack([e for _, e in batches]))
    for k, model in enumerate(alone):
        for name, value in model.params().items():
            start = init_params(CFG, seeds[k])[name].double()
            if name == "ln_final.b":
                # b adds the same W_U . b to both rewards of a pair, which the pairwise loss
                # cancels: its gradient is rounding noise, and neither path moves it
                for moved in (value - start, stack[f"m.{name}"][k] - start):
                    assert moved.abs().max() < 1e-9
                continue
            assert (value - start).abs().max() > 1e-4, name  # the step really moved it
            torch.testing.assert_close(stack[f"m.{name}"][k], value, rtol=0, atol=1e-12)


def test_the_rm_runs_on_other_weights_through_functional_call():
    """`p()` reads attributes, so functional_call's weights are the ones used."""
    model = RewardModel(CFG, init_params(CFG, 0))
    other = init_params(CFG, 1)
    tokens = torch.randint(0, CFG.d_vocab, (4, 6))
    eos = torch.tensor([5, 3, 4, 5])
    swapped = torch.func.functional_call(model, other, (tokens, eos))
    torch.testing.assert_close(swapped, RewardModel(CFG, other)(tokens, eos), rtol=0, atol=0)
