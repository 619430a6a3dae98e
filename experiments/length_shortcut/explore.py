"""The length-shortcut runs in the explorer: the reward-length correlation, the accuracy gap
between pairs whose chosen completion is longer or shorter, and the internal signals, over
training."""

from __future__ import annotations

import pandas as pd

from alignlab.explorer.curves import run_views
from alignlab.explorer.panels import write_views

BEHAVIOUR = {
    "wg_corr_reward_length": "within-group corr(reward, length)",
    "acc_chosen_longer": "accuracy, chosen longer",
    "acc_chosen_shorter": "accuracy, chosen shorter",
}
INSIDE = {
    "probe_length_rel": "length probe (relative)",
    "head_align_length": "head alignment with length",
    "patch_frac": "patching: share of the length effect",
}
GROUPS = [
    ("behaviour", "behaviour", BEHAVIOUR, False),
    ("inside", "inside (mean over layers / heads)", INSIDE, False),
]


def explore(measures_path, runs_path, out) -> None:
    runs = pd.read_parquet(runs_path).sort_values(["length_bias", "seed"])
    labels = {r.run_id: f"{r.run_id} (length bias {r.length_bias})" for r in runs.itertuples()}
    write_views("length_shortcut", "the length shortcut in reward models (Singhal et al. 2023)",
                run_views(pd.read_parquet(measures_path), labels, GROUPS), out)  # fmt: skip
