"""Where a reward-model job's time goes, and whether stacking same-shape RMs pays on this machine.

For each RM size of the laptop scale's reward experiment (its config: d_model 4-32, 2 layers,
pre-LN, batch 64 pairs), on pairs and pool samples drawn from its environment:
- train step:   one step of `alignlab.preference.train.RMTrainer` (draw a batch of pairs, AdamW),
                ms, and the run's training time at the laptop's 16,000 pairs and 6 epochs;
- pool scoring: `alignlab.preference.model.score` over a slice of the best-of-n pool, scaled to
                the laptop pool (64 prompts x 10,000 samples);
- stacked:      the ensemble members' case (K = 4 RMs of one shape on one pairs file, each its
                own batches): K `RMTrainer` steps against one step of the K stacked under
                torch.func.vmap (`alignlab.preference.stacked.StackedRMTrainer`, which the
                reward_train_group jobs run), the same work (tests/test_stacked_rm.py). torch 2.13
                has no vmap batching rule for the CPU attention kernel, so vmap runs that one
                op per member. Timed alternating in one process, median of rounds.
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

from alignlab.config import load_experiment
from alignlab.preference.env import Env, EnvConfig, make_pairs, make_pool
from alignlab.preference.model import RewardModel, init_params, score
from alignlab.preference.stacked import StackedRMTrainer
from alignlab.preference.train import RMTrainer, rm_config, split_pairs
from alignlab.runtime import configure_torch

RESULTS = Path(__file__).parent / "results" / "reward_time.csv"
EXPERIMENT = Path(__file__).parents[1] / "experiments" / "reward"
MEMBERS = 4  # the laptop ensembles' size


def time_training(cfg, run: dict, pairs: dict, rounds: int) -> dict:
    """Train-step ms of K RMs alone (`RMTrainer`, one after the other) and of the same K stacked
    (`StackedRMTrainer`), alternating: the steps the reward jobs run, batches drawn included."""
    runs = [{**run, "seed": seed} for seed in range(MEMBERS)]
    train, test = split_pairs(pairs, len(pairs["chosen_eos"]), run["heldout_frac"])
    cpu = torch.device("cpu")
    alone = [RMTrainer(r, cfg, train, test, set(), cpu) for r in runs]
    stacked = StackedRMTrainer(runs, cfg, [(train, test)] * MEMBERS, set(), cpu)
    step = 0

    def k_alone():
        for trainer in alone:
            trainer.step(step)

    def together():
        stacked.step(step)

    reps = 10
    k_alone(), together()  # warm-up
    times = {"alone": [], "stacked": []}
    for _ in range(rounds):
        times["alone"].append(_mean_ms(k_alone, reps))
        times["stacked"].append(_mean_ms(together, reps))
    alone_ms, stacked_ms = (statistics.median(times[k]) for k in ("alone", "stacked"))
    return {
        "step_ms": alone_ms / MEMBERS,
        "stacked_step_ms_per_member": stacked_ms / MEMBERS,
        "stacking_speedup": alone_ms / stacked_ms,
    }


def _mean_ms(fn, reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return 1e3 * (time.perf_counter() - start) / reps


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
    pairs = make_pairs(env, 2000, seed=0)  # the members share one pairs file, as in ensembles
    rows = []
    for d_model in block["sweeps"]["rm_size"]["d_model"]:
        run = {**block["defaults"], "d_model": d_model}
        cfg = rm_config(run, block["env"])
        n_train = run["n_pairs"] - round(run["n_pairs"] * run["heldout_frac"])
        steps = max(run["min_steps"], math.ceil(run["epochs"] * n_train / run["batch_size"]))
        train = time_training(cfg, run, pairs, args.rounds)
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
