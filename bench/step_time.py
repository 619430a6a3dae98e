"""Time one full-batch AdamW step of the grokking model, fast model vs TransformerLens bridge.

The paper config (p = 113, d_model 128, 4 heads x 32, d_mlp 512, 30% of pairs = 3830 examples,
AdamW lr 1e-3, wd 1, betas (0.9, 0.98), float64 cross-entropy at '='). All models start from
the same weights and are timed in ONE process, alternating in rounds, so that machine load
affects each alike; warm-up steps (and compilation) are excluded and the median over rounds is
reported. Results: a table on stdout and bench/results/step_time.csv.

    .venv/bin/python bench/step_time.py --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from flops import matmul_floor_ms, matmul_peak_gflops, necessary_step_flops  # bench/flops.py

from alignlab import bridge as B
from alignlab import optim
from alignlab.data import build_dataset
from alignlab.fused_head import chunk_rows
from alignlab.models import FinalPositionTransformer, ModelConfig, ModularDecoder, init_params
from alignlab.runtime import configure_torch, resolve_device
from alignlab.train import make_train_step

RESULTS = Path(__file__).parent / "results" / "step_time.csv"
PAPER = ModelConfig(p=113, d_model=128, n_heads=4, d_head=32, d_mlp=512)


def train_step(model: Callable, parameters, a, b, c, compile: bool = False) -> Callable:
    """The training step of alignlab.train (and its optimizer) for any (a, b) -> logits model."""
    optimizer = optim.AdamW(
        [p for p in parameters if p.requires_grad], lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98)
    )
    return make_train_step(model, optimizer, a, b, c, compile=compile)


def fast_eager(params, data) -> Callable:
    model = FinalPositionTransformer(PAPER, params)
    return train_step(model, model.parameters(), *data)


def fast_compiled(params, data) -> Callable:
    model = FinalPositionTransformer(PAPER, params)
    return train_step(model, model.parameters(), *data, compile=True)


def tl_bridge(params, data) -> Callable:
    """The TransformerLens 4.x bridge: full 3-position forward, final-position loss."""
    bridge = B.to_bridge(params, PAPER, device=data[0].device)
    return train_step(lambda a, b: B.final_logits(bridge, a, b), bridge.parameters(), *data)


def reference(params, data) -> Callable:
    """The general full-sequence decoder (alignlab.models.ModularDecoder) at one layer."""
    model = ModularDecoder(PAPER, params)
    return train_step(model, model.parameters(), *data)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(step: Callable, n: int, device: torch.device) -> float:
    """Mean ms per step over n steps."""
    sync(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return 1000 * (time.perf_counter() - start) / n


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per model first")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile model")
    parser.add_argument("--no-reference", action="store_true", help="skip the plain reference")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    configure_torch(args.threads)  # threads + torch.set_flush_denormal(True)
    device = resolve_device(args.device)
    a, b, c = (t.to(device) for t in build_dataset(PAPER.p, "add", 0.3, args.seed).split(True))
    params = {k: v.to(device) for k, v in init_params(PAPER, args.seed).items()}

    builders = {
        "fast eager": fast_eager,
        "fast compiled": fast_compiled,
        "bridge (TL 4.x)": tl_bridge,
        "reference": reference,
    }
    if args.no_compile:
        del builders["fast compiled"]
    if args.no_reference:
        del builders["reference"]

    steps, first_loss, setup_s = {}, {}, {}
    for name, build in builders.items():
        start = time.perf_counter()
        steps[name] = build(params, (a, b, c))
        first_loss[name] = steps[name]().item()  # same weights: the same loss for all
        for _ in range(args.warmup - 1):
            steps[name]()
        setup_s[name] = time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append(time_steps(step, args.steps, device))

    peak = matmul_peak_gflops(device) if device.type == "cpu" else math.nan
    floor = (
        matmul_floor_ms(PAPER, len(a), chunk_rows(device, len(a), PAPER.d_mlp))
        if device.type == "cpu"
        else math.nan
    )
    return report(args, device, len(a), times, first_loss, setup_s, peak, floor)


def report(args, device, n_examples, times, first_loss, setup_s, peak, floor) -> list[dict]:
    """Print the table and write it as CSV; achieved GFLOP/s counts only necessary FLOPs; the
    matmul floor bounds any speed-up: base / floor if all else took no time."""
    median = {name: statistics.median(ms) for name, ms in times.items()}
    base = median["bridge (TL 4.x)"]
    flops = necessary_step_flops(PAPER, n_examples)
    rows = [
        {
            "model": name,
            "ms_per_step_median": round(median[name], 3),
            "ms_min": round(min(ms), 3),
            "ms_max": round(max(ms), 3),
            "speedup_vs_bridge": round(base / median[name], 2),
            "necessary_gflops_per_s": round(flops / median[name] / 1e6, 1),
            "matmul_peak_gflops_per_s": round(peak, 1),
            "matmul_floor_ms": round(floor, 2),
            "speedup_bound_vs_bridge": round(base / floor, 2),
            "first_loss": f"{first_loss[name]:.10f}",
            "setup_s": round(setup_s[name], 1),
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "threads": args.threads,
            "device": str(device),
            "n_examples": n_examples,
            "torch": torch.__version__,
        }
        for name, ms in times.items()
    ]
    print(
        f"p={PAPER.p}, {n_examples} examples, {args.threads} threads, {device}, "
        f"{args.rounds} rounds x {args.steps} steps (median of round means); necessary FLOPs "
        f"{flops / 1e9:.2f} GFLOP/step; fp32 matmul peak {peak:.0f} GFLOP/s; the necessary "
        f"matmuls alone at the fast step's shapes take {floor:.1f} ms ({flops / floor / 1e6:.0f} "
        f"GFLOP/s): no step can beat {base / floor:.1f}x the bridge here"
    )
    print(
        f"{'model':<18}{'ms/step':>10}{'min':>10}{'max':>10}{'x bridge':>10}"
        f"{'GFLOP/s':>10}{'% peak':>8}  first loss"
    )
    for row in rows:
        print(
            f"{row['model']:<18}{row['ms_per_step_median']:>10.2f}{row['ms_min']:>10.2f}"
            f"{row['ms_max']:>10.2f}{row['speedup_vs_bridge']:>10.2f}"
            f"{row['necessary_gflops_per_s']:>10.1f}"
            f"{100 * row['necessary_gflops_per_s'] / peak:>7.0f}%  {row['first_loss']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
