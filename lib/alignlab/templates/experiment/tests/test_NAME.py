"""Tests of experiments/$name/process.py (scaffolded; replace with tests of your experiment)."""

import pandas as pd

from experiments.$name.process import run


def test_run_writes_a_tidy_decaying_table(tmp_path):
    run({"seed": 0, "steps": 100, "rate": 0.05}, tmp_path / "m.parquet")
    table = pd.read_parquet(tmp_path / "m.parquet")
    assert list(table.columns) == ["step", "measure", "component", "value"]
    assert table.value.iloc[-1] < 0.1 * table.value.iloc[0]


def test_without_decay_the_quantity_stays_near_one(tmp_path):
    run({"seed": 0, "steps": 100, "rate": 0.0}, tmp_path / "m.parquet")
    assert pd.read_parquet(tmp_path / "m.parquet").value.iloc[-1] > 0.5
