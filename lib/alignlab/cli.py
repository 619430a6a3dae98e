"""The `alignlab` command: check an experiment's config and list its runs before running the DAG.

    alignlab validate grokking --scale laptop    validate config.yaml (every scale), list runs
    alignlab experiments                         the experiments the DAG will include
The DAG itself runs through Snakemake (`make reproduce`, or `snakemake --config scale=...`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alignlab.config import SCALES, ConfigError, expand_runs, load_experiment


def _experiments_dir(root: str) -> Path:
    return Path(root) / "experiments"


def cmd_experiments(args) -> int:
    for rules in sorted(_experiments_dir(args.root).glob("*/rules.smk")):
        print(rules.parent.name)
    return 0


def cmd_validate(args) -> int:
    experiment_dir = _experiments_dir(args.root) / args.experiment
    if not (experiment_dir / "config.yaml").exists():
        print(f"no experiment {args.experiment!r} (no {experiment_dir / 'config.yaml'})")
        return 2
    try:
        runs = expand_runs(load_experiment(experiment_dir, args.scale))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.experiment}: config valid; {len(runs)} runs at the {args.scale} scale")
    for run_id in sorted(runs):
        print(f"  {run_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alignlab", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("experiments", help="list experiments").set_defaults(fn=cmd_experiments)
    validate = sub.add_parser("validate", help="validate an experiment's config, list its runs")
    validate.add_argument("experiment")
    validate.add_argument("--scale", choices=SCALES, default="laptop")
    validate.set_defaults(fn=cmd_validate)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
