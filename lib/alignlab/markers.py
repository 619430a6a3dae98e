"""Published vs reproduced: evaluate each experiment's markers.yaml against its per-run values.

A marker spec (one entry of experiments/<name>/markers.yaml, schema in markers.schema.yaml) names
a published claim, its kind and how to read the reproduced value from the experiment's
`markers.parquet` (columns run_id, marker, value) joined with `runs.parquet`:
- ordering: `events: [first, second]` must satisfy first < second in every selected run;
- range: the `aggregate` of `value` over the selected runs lies in [low, high];
- number: the aggregate lies within `published` +/- `tolerance`.
A marker whose scales exclude the current one reads "not run at this scale", never "fails".
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from alignlab.config import load_yaml, validate

SCHEMA = Path(__file__).with_name("markers.schema.yaml")
COLUMNS = [
    "experiment",
    "id",
    "paper",
    "claim",
    "kind",
    "published",
    "reproduced",
    "seeds",
    "status",
]
AGGREGATES = {"min": min, "max": max, "mean": lambda xs: sum(xs) / len(xs)}


def load_specs(path: Path) -> list[dict]:
    specs = load_yaml(path) or []
    validate(specs, load_yaml(SCHEMA), source=str(path))
    return specs


def _per_run(values: pd.DataFrame, runs: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Selected runs as rows, marker names as columns (plus the run's seed)."""
    selected = runs.query(spec["runs"])
    wide = values.pivot_table(index="run_id", columns="marker", values="value", dropna=False)
    return wide.loc[wide.index.intersection(selected.run_id)].join(
        selected.set_index("run_id")[["seed"]]
    )


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.3g}"


def _evaluate(spec: dict, table: pd.DataFrame) -> tuple[str, str]:
    """(reproduced value as text, holds | fails) for the selected runs of one marker."""
    if spec["kind"] == "ordering":
        first, second = spec["events"]
        pairs = list(zip(table[first], table[second], strict=True))
        ok = [math.isfinite(a) and math.isfinite(b) and a < b for a, b in pairs]
        holds = all(ok)
        if len(pairs) <= 3:
            text = "; ".join(f"{_fmt(a)} < {_fmt(b)}" for a, b in pairs)
        else:  # many runs: a count and the medians, to keep the table readable
            medians = table[[first, second]].median()
            text = (
                f"{sum(ok)}/{len(ok)} runs; median {_fmt(medians[first])} < {_fmt(medians[second])}"
            )
        return text, "holds" if holds else "fails"
    values = [float(v) for v in table[spec["value"]]]
    value = AGGREGATES[spec["aggregate"]](values)
    if spec["kind"] == "range":
        low, high = float(spec["low"]), float(spec["high"])
    else:
        low = float(spec["published"]) - spec["tolerance"]
        high = float(spec["published"]) + spec["tolerance"]
    holds = math.isfinite(value) and low <= value <= high
    return f"{spec['aggregate']} {_fmt(value)}", "holds" if holds else "fails"


def seed_ranges(seeds) -> str:
    """Sorted distinct seeds with runs of consecutive ones shortened: 0,1,2,3,7 -> "0-3,7"."""
    values = sorted({int(s) for s in seeds})
    parts, start = [], None
    for i, seed in enumerate(values):
        start = seed if start is None else start
        if i + 1 == len(values) or values[i + 1] != seed + 1:
            parts.append(str(seed) if seed == start else f"{start}-{seed}")
            start = None
    return ",".join(parts)


def evaluate(experiment: str, specs: list[dict], values, runs, scale: str) -> pd.DataFrame:
    """One row per marker: published, reproduced, the seeds it was taken over, and its status."""
    rows = []
    for spec in specs:
        row = {"experiment": experiment, "kind": spec["kind"], "published": str(spec["published"])}
        row |= {key: spec[key] for key in ("id", "paper", "claim")}
        if scale not in spec["scales"]:
            rows.append(row | {"reproduced": "", "seeds": "", "status": "not run at this scale"})
            continue
        table = _per_run(values, runs, spec)
        if table.empty:
            rows.append(row | {"reproduced": "no runs", "seeds": "", "status": "fails"})
            continue
        reproduced, status = _evaluate(spec, table)
        seeds = seed_ranges(table.seed)
        rows.append(row | {"reproduced": reproduced, "seeds": seeds, "status": status})
    return pd.DataFrame(rows, columns=COLUMNS)


def evaluate_experiment(experiment, specs_path, values_path, runs_path, scale, out) -> None:
    """Rule entry point: write the experiment's published-vs-reproduced table."""
    table = evaluate(
        experiment,
        load_specs(specs_path),
        pd.read_parquet(values_path),
        pd.read_parquet(runs_path),
        scale,
    )
    table.to_parquet(out, index=False)
