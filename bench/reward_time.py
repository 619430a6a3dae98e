"""Where a reward-model job's time goes, and whether stacking same-shape RMs pays on this machine.

For each RM size of the laptop scale's reward experiment (its config: d_model 4-32, 2 layers,
pre-LN, batch 64 pairs), on pairs and pool samples drawn from its environment:
- train step:   one AdamW step on a batch of pairs (the step `alignlab.preference.train` runs),
                ms, and the run's training time at the laptop's 16,000 pairs and 6 epochs;
- pool scoring: `alignlab.preference.model.score` over a slice of the best-of-n pool, scaled to
                the laptop pool (64 prompts x 10,000 samples);
- stacked:      the ensemble members' case (K = 4 RMs of one shape, each its own batch): K
                separate steps against one step of the K stacked models under torch.func.vmap
                (`functional_call` on stacked parameters; one fused AdamW over the stack), the
                same work (tests/test_reward_time.py). torch 2.13 has no vmap batching rule for
                the CPU attention kernel, so vmap runs that one op per member (it warns).
                Timed alternating in one process, median of rounds.
Results: a table on stdout and bench/results/reward_time.csv.

    .venv/bin/python bench/reward_time.py --rounds 5

`make bench BENCH_ARGS=--reward` runs it with the other measurements.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from alignlab import optim
from alignlab.config import load_experiment
from alignlab.preference.env import Env, EnvConfig, make_pairs, make_pool
from alignlab.preference.model import RewardModel, init_params, score
from alignlab.preference.train import rm_config
from alignlab.runtime import configure_torch

RESULTS = Path(__file__).parent / "results" / "reward_time.csv"
EXPERIMENT = Path(__file__).parents[1] / "experiments" / "reward"
MEMBERS = 4  # the laptop ensembles' size


def _batches(env: Env, n_batches: int, batch: int, seed: int):
    """`n_batches` training batches of real pairs: (tokens [2 * batch, seq], eos [2 * batch])."""
    pairs = make_pairs(env, n_batches * batch, seed)
    out = []
    for i in range(n_batches):
        rows = slice(i * batch, (i + 1) * batch)
        both = torch.cat([torch.from_numpy(pairs[k][rows]).long() for k in ("chosen", "rejected")])
        eos = torch.cat(
            [torch.from_numpy(pairs[k][rows]).long() for k in ("chosen_eos", "rejected_eos")]
        )
        out.append((both, eos))
    return out


def single_step(model: RewardModel, opt, batch: int):
    def step(both, eos):
        r = model(both, eos)
        loss = -F.logsigmoid(r[:batch] - r[batch:]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


class _AtRead(torch.nn.Module):
    """The reward at EOS as a module of (tokens, eos), for functional_call under vmap (the
    model's own forward cuts the batch after its last EOS with a Python int, which vmap cannot
    trace; here the stacked batch is cut once, outside)."""

    def __init__(self, model: RewardModel):
        super().__init__()
        self.m = model

    def forward(self, tokens, eos):
        return (self.m.residual(tokens, at=eos) @ self.m.p("unembed.W_U"))[:, 0]


def stacked_step(
    models: list[RewardModel], batch: int, lr: float = 3e-3, weight_decay: float = 0.0
):
    """One step of len(models) RMs stacked under vmap, the same math as each one's own step
    (tests/test_reward_time.py); returns (step, the stacked parameters "m.<name>" [K, ...])."""
    wrapper = _AtRead(models[0])
    names = list(models[0].params())
    stack = {
        f"m.{n}": torch.stack([m.p(n).detach() for m in models]).requires_grad_(True) for n in names
    }
    # AdamW is element-wise, so one optimizer over the stack updates each RM as its own would
    opt = optim.AdamW(list(stack.values()), lr=lr, weight_decay=weight_decay)
    rewards = vmap(lambda params, t, e: functional_call(wrapper, params, (t, e)))

    def step(both, eos):  # both [K, 2 * batch, seq], eos [K, 2 * batch]
        seq = int(eos.max()) + 1
        r = rewards(stack, both[:, :, :seq], eos)
        loss = -F.logsigmoid(r[:, :batch] - r[:, batch:]).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, stack


def _mean_ms(fn, reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return 1e3 * (time.perf_counter() - start) / reps


def time_training(cfg, run: dict, batches, rounds: int) -> dict:
    """Train-step ms of one RM and of K stacked, alternating: K singles vs one stacked step."""
    batch = run["batch_size"]
    models = [RewardModel(cfg, init_params(cfg, seed)) for seed in range(MEMBERS)]
    hyper = {"lr": run["lr"], "weight_decay": run["weight_decay"]}
    singles = [single_step(m, optim.AdamW(m.parameters(), **hyper), batch) for m in models]
    stacked, _ = stacked_step(
        [RewardModel(cfg, init_params(cfg, s)) for s in range(MEMBERS)], batch, **hyper
    )
    both = torch.stack([b for b, _ in batches[:MEMBERS]])
    eos = torch.stack([e for _, e in batches[:MEMBERS]])

    def k_singles():
        for k, step in enumerate(singles):
            step(*batches[k])

    reps = 10
    k_singles(), stacked(both, eos)  # warm-up
    times = {"singles": [], "stacked": []}
    for _ in range(rounds):
        times["singles"].append(_mean_ms(k_singles, reps))
        times["stacked"].append(_mean_ms(lambda: stacked(both, eos), reps))
    singles_ms, stacked_ms = (statistics.median(times[k]) for k in ("singles", "stacked"))
    return {
        "step_ms": singles_ms / MEMBERS,
        "stacked_step_ms_per_member": stacked_ms / MEMBERS,
        "stacking_speedup": singles_ms / stacked_ms,
    }


def time_scoring(cfg, pool: dict, rounds: int) -> float:
    """Seconds to score the given pool samples (best of rounds)."""
    model = RewardModel(cfg, init_params(cfg, 0))
    tokens, eos = torch.from_numpy(pool["tokens"]), torch.from_numpy(pool["eos"])
    score(model, tokens[:4096], eos[:4096])  # warm-up
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        score(model, tokens, eos)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pool-size", type=int, default=1000, help="samples per prompt timed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    configure_torch(1)
    block = load_experiment(EXPERIMENT, "laptop")
    env = Env(EnvConfig.from_dict(block["env"]))
    laptop_pool = block["pool"]["n_prompts"] * block["pool"]["size"]
    pool = make_pool(env, block["pool"]["n_prompts"], args.pool_size, seed=0)
    scale = laptop_pool / len(pool["eos"])
    batches = _batches(env, MEMBERS, block["defaults"]["batch_size"], seed=0)
    rows = []
    for d_model in block["sweeps"]["rm_size"]["d_model"]:
        run = {**block["defaults"], "d_model": d_model}
        cfg = rm_config(run, block["env"])
        n_train = run["n_pairs"] - round(run["n_pairs"] * run["heldout_frac"])
        steps = max(run["min_steps"], math.ceil(run["epochs"] * n_train / run["batch_size"]))
        train = time_training(cfg, run, batches, args.rounds)
        scoring = time_scoring(cfg, pool, args.rounds) * scale
        rows.append(
            {
                "d_model": d_model,
                "train_steps": steps,
                **{k: round(v, 3) for k, v in train.items()},
                "train_s": round(steps * train["step_ms"] / 1e3, 1),
                "pool_scoring_s": round(scoring, 1),
            }
        )
    print(
        f"reward models, laptop config, 1 thread; pool scoring scaled from "
        f"{len(pool['eos'])} to {laptop_pool} samples; stacking: {MEMBERS} RMs under vmap"
    )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
