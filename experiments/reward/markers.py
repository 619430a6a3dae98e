"""The reward markers' per-run values (markers.parquet: run_id, marker, value), all cross-fitted
(experiments/reward/bon.py: crossfit): the sweeps' and the oracle's, the ensemble's, and the
same-size nulls' under the same names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.reward.bon import ENSEMBLE_RULES
from experiments.reward.runs import NULL_ROLES, cell_key


def _frac(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else float("nan")


def _rows(rids, name: str, value) -> pd.DataFrame:
    """Marker rows: one (run_id, marker, value) per run. `value` is a scalar (rids: run ids) or
    {seed: value} (rids: (run_id, seed) pairs; each run gets its seed's value)."""
    if isinstance(value, dict):
        return pd.DataFrame(
            [{"run_id": r, "marker": name, "value": float(value[s])} for r, s in rids],
            columns=["run_id", "marker", "value"],
        )
    return pd.DataFrame(
        [{"run_id": r, "marker": name, "value": float(value)} for r in rids],
        columns=["run_id", "marker", "value"],
    )


def _per_seed(summary: dict, field: str) -> dict[int, float]:
    return {int(k): float(v) for k, v in zip(summary["seeds"], summary[field], strict=True)}


def _pooled_sd(*per_seed: dict) -> float:
    """Seed-to-seed SD of per-seed values, pooled over cells: sqrt(mean of their variances)."""
    return float(np.sqrt(np.mean([np.var(list(v.values()), ddof=1) for v in per_seed])))


def _sweep_frames(
    summaries: dict, runs: pd.DataFrame, cells: dict, sweep: str, tag: str, oracle: dict | None
) -> list[pd.DataFrame]:
    """One sweep's marker rows (see marker_values): on its runs, and on its null rows."""
    frames = []
    seed_of = runs.set_index("run_id")["seed"].astype(int)
    keys = sorted(
        (k for k in summaries if k.split(":")[0] == sweep), key=lambda k: int(k.split(":")[1])
    )
    if not keys:
        return frames
    small, large = summaries[keys[0]], summaries[keys[-1]]
    rids = sorted({r for k in keys for r in cells[k]})
    pairs = [(r, int(seed_of[r])) for r in rids]
    nulls = runs[runs.role == NULL_ROLES[sweep]]
    null_pairs = list(zip(nulls.run_id, nulls.seed.astype(int), strict=True))

    def add(name, real, null=None):
        # a dict is per seed: its rows are matched to runs by seed; a float goes on every run
        frames.append(_rows(pairs if isinstance(real, dict) else rids, name, real))
        if null is not None:
            frames.append(
                _rows(
                    null_pairs if isinstance(null, dict) else [r for r, _ in null_pairs],
                    name,
                    null,
                )
            )

    add(f"cf_drop_smallest_{tag}", small["cf_drop"])
    add(f"cf_se_smallest_{tag}", small["cf_se"])
    add(f"cf_drop_z_smallest_{tag}", small["cf_z"])
    if oracle is not None:
        frames.append(
            _rows(cells[cell_key("oracle", 0)], f"cf_drop_z_smallest_{tag}", oracle["cf_z"])
        )
    add(f"proxy_rise_smallest_{tag}", small["proxy_rise_after_peak"])
    add(f"max_cf_drop_z_{tag}", max(summaries[k]["cf_z"] for k in keys))
    for field, name in (("cf_peak_seed", "cf_peak"), ("cf_rel_drop_seed", "cf_rel_drop")):
        null_cell = small if field == "cf_rel_drop_seed" else large
        lo, hi = _per_seed(small, field), _per_seed(large, field)
        lo_null = _per_seed(null_cell, f"half_a_{field}")
        hi_null = _per_seed(null_cell, f"half_b_{field}")
        add(f"{name}_smallest_{tag}", lo, lo_null)
        add(f"{name}_largest_{tag}", hi, hi_null)
        add(f"{name}_seed_sd_{tag}", _pooled_sd(lo, hi), _pooled_sd(lo_null, hi_null))
    return frames


def marker_values(summaries: dict, runs: pd.DataFrame, cells: dict) -> pd.DataFrame:
    """Per-run values the markers read (all cross-fitted, experiments/reward/bon.py: crossfit).

    For each sweep (tag rm / data), on every run of the sweep: the smallest cell's cross-fitted
    drop, its SE and z, its proxy rise after the peak; per seed (the run's seed), the smallest and
    largest cells' cross-fitted peak gold and relative drop, and the seed-to-seed SD of each
    (pooled over the two cells; the orderings' gap unit). On the sweep's null rows (role null_rm /
    null_data): the same names, but both "smallest" and "largest" are ONE cell on two disjoint
    halves of the prompts (the smallest cell for the drop, the largest for the peak gold). The
    oracle run carries the oracle cell's cross-fitted z under the falls' name (its null).
    """
    frames = []
    oracle = summaries.get(cell_key("oracle", 0))
    for sweep, tag in (("rm_size", "rm"), ("data_size", "data")):
        frames += _sweep_frames(summaries, runs, cells, sweep, tag, oracle)
    if oracle is not None:
        rids = cells[cell_key("oracle", 0)]
        frames.append(_rows(rids, "oracle_drop", oracle["drop"]))
        frames.append(_rows(rids, "oracle_cf_drop", oracle["cf_drop"]))
    if not frames:
        return pd.DataFrame(columns=["run_id", "marker", "value"])
    return pd.concat(frames, ignore_index=True)


def ensemble_marker_values(
    fits: pd.DataFrame, member_ids, null_ids=(), z_threshold: float = 2.0
) -> pd.DataFrame:
    """Per-member values the ensemble markers read (cross-fitted drops): the single member's z,
    and the larger of the two conservative rules' drops as a fraction of the single member's.
    "Removing overoptimization" presupposes some: the fraction is NaN unless the single member
    overoptimizes (cf_z >= z_threshold). The null rows (`null_ids`) get the same fraction, under
    the same condition, between the single member on two disjoint halves of the prompts."""
    by = fits.set_index("rule")
    single = by.loc["single"]
    falls = bool(single.cf_z >= z_threshold)
    conservative = max(by.loc["worst_case", "cf_drop"], by.loc["mean_minus_var", "cf_drop"])
    values = {
        "ens_cf_z_single": single.cf_z,
        "ens_conservative_drop_frac": _frac(conservative, single.cf_drop) if falls else np.nan,
        **{f"ens_cf_drop_{rule}": by.loc[rule, "cf_drop"] for rule in ENSEMBLE_RULES},
        **{f"ens_cf_peak_{rule}": by.loc[rule, "cf_peak"] for rule in ENSEMBLE_RULES},
    }
    rows = [_rows(member_ids, name, v) for name, v in values.items()]
    null = _frac(single.half_a_cf_drop, single.half_b_cf_drop) if falls else np.nan
    rows.append(_rows(null_ids, "ens_conservative_drop_frac", null))
    return pd.concat(rows, ignore_index=True)
