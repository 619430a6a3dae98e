"""The reward markers' values and same-size nulls: which run carries which cross-fitted value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.reward import bon
from experiments.reward.markers import marker_values
from experiments.reward.runs import null_rows


def _summary(seeds, rng, height):
    ns = bon.n_grid(256)
    d = bon.d_of_n(ns)
    curves = {
        s: {
            "gold": height * d * (2 - d) + rng.standard_normal((16, len(ns))) * 0.2,
            "proxy": np.stack([d] * 16),
        }
        for s in seeds
    }
    return bon.summarize_cell(curves, ns, n_boot=20, seed=0)


def test_marker_values_real_runs_nulls_and_oracle():
    rng = np.random.default_rng(0)
    seeds = [20, 21, 22]
    runs_cfg = {f"dm{dm}-s{s}": {"seed": s, "data_seed": s} for dm in (4, 32) for s in seeds}
    runs_cfg["oracle"] = {"seed": 20, "data_seed": 20}
    cells = {
        "rm_size:4": [f"dm4-s{s}" for s in seeds],
        "rm_size:32": [f"dm32-s{s}" for s in seeds],
        "oracle:0": ["oracle"],
    }
    nulls = null_rows(runs_cfg, cells)
    assert [n["run_id"] for n in nulls] == [f"null_rm-seed{s}" for s in seeds]
    summaries = {
        "rm_size:4": _summary(seeds, rng, 1.0),
        "rm_size:32": _summary(seeds, rng, 2.0),
        "oracle:0": _summary([20], rng, 0.0),
    }
    runs = pd.DataFrame(
        [{"run_id": r, "role": "run", "seed": c["seed"]} for r, c in runs_cfg.items()]
        + [{"run_id": n["run_id"], "role": n["role"], "seed": n["seed"]} for n in nulls]
    )
    wide = marker_values(summaries, runs, cells).pivot(
        index="run_id", columns="marker", values="value"
    )
    small, large = summaries["rm_size:4"], summaries["rm_size:32"]
    for j, s in enumerate(seeds):  # real runs: their own seed's value, of both cells
        for rid in (f"dm4-s{s}", f"dm32-s{s}"):
            assert wide.loc[rid, "cf_peak_smallest_rm"] == small["cf_peak_seed"][j]
            assert wide.loc[rid, "cf_peak_largest_rm"] == large["cf_peak_seed"][j]
        null = f"null_rm-seed{s}"  # nulls: the largest cell on its two prompt halves
        assert wide.loc[null, "cf_peak_smallest_rm"] == large["half_a_cf_peak_seed"][j]
        assert wide.loc[null, "cf_peak_largest_rm"] == large["half_b_cf_peak_seed"][j]
        assert wide.loc[null, "cf_rel_drop_smallest_rm"] == small["half_a_cf_rel_drop_seed"][j]
    sd = np.sqrt(
        np.mean([np.var(small["cf_peak_seed"], ddof=1), np.var(large["cf_peak_seed"], ddof=1)])
    )
    assert wide.loc["dm4-s20", "cf_peak_seed_sd_rm"] == pytest.approx(sd, rel=1e-12)
    assert wide.loc["dm4-s21", "cf_drop_z_smallest_rm"] == small["cf_z"]
    # the falls' null: the oracle (here a flat curve) under the same name
    assert wide.loc["oracle", "cf_drop_z_smallest_rm"] == summaries["oracle:0"]["cf_z"]
    # a larger peak for the larger RM: the real ordering has a lead, the null's is noise
    real = wide.loc["dm4-s20", "cf_peak_largest_rm"] - wide.loc["dm4-s20", "cf_peak_smallest_rm"]
    fake = (
        wide.loc["null_rm-seed20", "cf_peak_largest_rm"]
        - wide.loc["null_rm-seed20", "cf_peak_smallest_rm"]
    )
    assert real > 0.5 and abs(fake) < 0.3
