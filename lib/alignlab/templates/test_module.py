"""Tests of lib/alignlab/$module.py (scaffolded; replace with tests of your experiment)."""

import pandas as pd

from alignlab.$module import run


def test_run_writes_a_tidy_decaying_table(tmp_path):
    run({"seed": 0, "steps": 100, "rate": 0.05}, tmp_path / "m.parquet")
    table = pd.read_parquet(tmp_path / "m.parquet")
    assert list(table.columns) == ["step", "measure", "component", "value"]
    assert table.value.iloc[-1] < 0.1 * table.value.iloc[0]
