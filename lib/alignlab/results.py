"""The results layer: every experiment's shared tables are written here, one way.

- `stack_runs`: per-run tidy tables concatenated with a `run_id` column (never recomputed).
- `runs_table`: one row per run (its flat config) with its `role` (alignlab.config.ROLES), so no
  code picks the canonical runs or the control by a config value.
- `write_markers`: markers.parquet, one row per (run_id, marker) with its value (NaN allowed: the
  marker layer counts it as not holding).
- `write_numbers`: numbers.json, the values the paper quotes, {name: value}.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from alignlab.config import ROLES
from alignlab.tables import flat_config

MARKER_COLUMNS = ["run_id", "marker", "value"]


def stack_runs(run_ids: Sequence[str], tables: Sequence[Path]) -> pd.DataFrame:
    """The per-run tables, in run order, each with its run_id."""
    frames = [
        pd.read_parquet(path).assign(run_id=rid) for rid, path in zip(run_ids, tables, strict=True)
    ]
    return pd.concat(frames, ignore_index=True)


def runs_table(
    run_ids: Sequence[str], runs: Mapping[str, dict], roles: Mapping[str, str]
) -> pd.DataFrame:
    """One row per run: run_id, role, then the run's config (lists and dicts as JSON)."""
    unknown = sorted({roles[rid] for rid in run_ids} - set(ROLES))
    if unknown:
        raise ValueError(f"unknown run role(s) {unknown}; allowed: {list(ROLES)}")
    rows = [{"run_id": rid, "role": roles[rid], **flat_config(runs[rid])} for rid in run_ids]
    return pd.DataFrame(rows)


def collect(
    run_ids: Sequence[str],
    runs: Mapping[str, dict],
    roles: Mapping[str, str],
    tables: Sequence[Path],
    out_table: Path,
    out_runs: Path,
) -> None:
    """The experiment's stacked per-run table and its runs table."""
    stack_runs(run_ids, tables).to_parquet(out_table, index=False)
    runs_table(run_ids, runs, roles).to_parquet(out_runs, index=False)


def write_markers(values: Mapping[str, Mapping[str, float]], out: Path) -> None:
    """markers.parquet from {run_id: {marker: value}}."""
    rows = [
        {"run_id": rid, "marker": marker, "value": value}
        for rid, by_marker in values.items()
        for marker, value in by_marker.items()
    ]
    pd.DataFrame(rows, columns=MARKER_COLUMNS).to_parquet(out, index=False)


def write_numbers(numbers: Mapping[str, object], out: Path) -> None:
    """numbers.json: the paper's values by name (alignlab.paper turns them into macros)."""
    Path(out).write_text(json.dumps(dict(numbers), indent=2) + "\n")
