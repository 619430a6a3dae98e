"""Reading and writing the tidy long tables: [run_id, step, measure, component, value]."""

from __future__ import annotations

import json

import pandas as pd


def series(table: pd.DataFrame, measure: str, component: str = "", run_id=None) -> pd.Series:
    """One measure (of one run, if `run_id`) as a step-indexed series; empty if absent."""
    mask = (table.measure == measure) & (table.component == component)
    if run_id is not None:
        mask &= table.run_id == run_id
    return table[mask].set_index("step")["value"].sort_index()


def flat_config(run: dict) -> dict:
    """A run config as one table row: lists and dicts become JSON strings."""
    return {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in run.items()}
