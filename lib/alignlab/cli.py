"""The `alignlab` command: check an experiment's config and list its runs before running the DAG.

    alignlab validate grokking --scale laptop    validate config.yaml and every resolved run
                                                 (every scale); list the scale's runs
    alignlab experiments                         the experiments the DAG will include
    alignlab markers --scale laptop              print the published-vs-reproduced table
    alignlab new-experiment NAME                 scaffold an experiment that runs at once
    alignlab explore --scale laptop              open paper/explorer/index.html (offline page)
The DAG itself runs through Snakemake (`make reproduce`, or `snakemake --config scale=...`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alignlab.config import SCALES, ConfigError, resolved_runs


def _experiments_dir(root: str) -> Path:
    return Path(root) / "experiments"


def cmd_experiments(args) -> int:
    for rules in sorted(_experiments_dir(args.root).glob("*/rules.smk")):
        print(rules.parent.name)
    return 0


def cmd_validate(args) -> int:
    experiment_dir = _experiments_dir(args.root) / args.experiment
    if not (experiment_dir / "config.yaml").exists():
        known = sorted(p.parent.name for p in _experiments_dir(args.root).glob("*/config.yaml"))
        print(f"no experiment {args.experiment!r} (no {experiment_dir / 'config.yaml'}); "
              f"experiments: {known}")  # fmt: skip
        return 2
    try:  # every run the experiment trains (sweeps, ensembles, the LLC's MLPs), each validated
        runs = resolved_runs(experiment_dir, args.scale)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.experiment}: config valid; {len(runs)} runs at the {args.scale} scale")
    for run_id in sorted(runs):
        print(f"  {run_id}")
    return 0


def cmd_markers(args) -> int:
    import pandas as pd

    from alignlab.markers_table import format_markers

    path = Path(args.root) / "results" / "paper" / args.scale / "markers.parquet"
    if not path.exists():
        print(f"no markers table at {path}: run the DAG at the {args.scale} scale first")
        return 2
    table = pd.read_parquet(path)
    print(f"Published vs reproduced ({args.scale} scale)")
    print(format_markers(table))
    return 0


def cmd_new_experiment(args) -> int:
    from alignlab.scaffold import new_experiment

    try:
        written = new_experiment(args.name, Path(args.root))
    except (ValueError, FileExistsError) as err:
        print(err, file=sys.stderr)
        return 1
    print(f"created experiment {args.name!r}:")
    for path in written:
        print(f"  {path}")
    print(f"next: snakemake -n --config only={args.name}; then see docs/adding-an-experiment.md")
    return 0


def cmd_explore(args) -> int:
    import webbrowser

    from alignlab.explorer.page import page_scale

    path = (Path(args.root) / "paper" / "explorer" / "index.html").resolve()
    if not path.exists():
        print(f"no explorer page at {path}: run the DAG at the {args.scale} scale first "
              f"(make reproduce, or snakemake --config scale={args.scale})")  # fmt: skip
        return 2
    built = page_scale(path)
    if built != args.scale:
        print(f"{path} was built at the {built} scale, not {args.scale}: run "
              f"snakemake --config scale={args.scale}")  # fmt: skip
        return 2
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        print(f"no browser found; open {path}")
        return 0
    print(f"opening {path}")
    browser.open(path.as_uri())
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
    new = sub.add_parser("new-experiment", help="scaffold experiments/NAME and its lib module")
    new.add_argument("name")
    new.set_defaults(fn=cmd_new_experiment)
    markers = sub.add_parser("markers", help="print the published-vs-reproduced table")
    markers.add_argument("--scale", choices=SCALES, default="laptop")
    markers.set_defaults(fn=cmd_markers)
    explore = sub.add_parser("explore", help="open the offline explorer page in a browser")
    explore.add_argument("--scale", choices=SCALES, default="laptop")
    explore.set_defaults(fn=cmd_explore)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
