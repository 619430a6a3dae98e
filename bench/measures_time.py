"""Time all progress measures over 150 checkpoints of the p = 113 paper model.

Checkpoints are random weights of the paper shape (the cost does not depend on the values); the
key frequencies are fixed to 5 so the restricted / excluded losses do their usual work.
"""

from __future__ import annotations

import argparse
import time

import torch

from alignlab.data import build_dataset
from alignlab.measures import progress_measures
from alignlab.models import ModelConfig, init_params
from alignlab.runtime import configure_torch

PAPER = ModelConfig(p=113)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    configure_torch(args.threads)
    stack = [init_params(PAPER, seed) for seed in range(args.checkpoints)]
    params = {name: torch.stack([p[name] for p in stack]) for name in stack[0]}
    dataset = build_dataset(PAPER.p, "add", 0.3, seed=0)
    start = time.perf_counter()
    table = progress_measures(
        list(range(args.checkpoints)), params, PAPER, dataset, key_freqs=[14, 35, 41, 42, 52]
    )
    seconds = time.perf_counter() - start
    print(
        f"all progress measures, {args.checkpoints} checkpoints (p=113, {args.threads} threads): "
        f"{seconds:.1f} s, {len(table)} rows"
    )
    return {"checkpoints": args.checkpoints, "threads": args.threads, "seconds": seconds}


if __name__ == "__main__":
    main()
