"""Per-rule wall time of a scale's DAG, from Snakemake's `benchmark:` files and job logs.

.venv/bin/python bench/rule_times.py --scale laptop
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def collect(scale: str, root: Path = Path("results")) -> pd.DataFrame:
    """One row per benchmarked job: experiment, rule, job, wall seconds, max RSS (MB)."""
    rows = []
    for path in sorted(root.glob(f"*/{scale}/benchmarks/**/*.tsv")):
        parts = path.relative_to(root).parts  # experiment/scale/benchmarks/<rule>/<job>.tsv
        bench = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "experiment": parts[0],
                "rule": parts[3] if len(parts) > 4 else path.stem,
                "job": path.stem,
                "wall_s": float(bench["s"].iloc[-1]),
                "max_rss_mb": float(bench["max_rss"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows, columns=["experiment", "rule", "job", "wall_s", "max_rss_mb"])


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="laptop")
    args = parser.parse_args(argv)
    table = collect(args.scale)
    if table.empty:
        print(f"no benchmark files under results/*/{args.scale}/benchmarks: run the DAG first")
        return table
    print(f"per-rule wall time at the {args.scale} scale (Snakemake benchmark files)")
    print(table.to_string(index=False))
    by_rule = table.groupby(["experiment", "rule"]).wall_s.agg(["count", "sum", "max"])
    print(by_rule.to_string())
    return table


if __name__ == "__main__":
    main()
