"""Collection: onsets, twin-matched behavioural gaps, marker values, calibration pieces."""

import math

import numpy as np
import pandas as pd

from experiments.backdoor import calibration as cal
from experiments.backdoor.summary import chronology, marker_values, onset


def test_onset_is_the_first_checkpoint_at_the_level():
    assert onset([0, 10, 20, 30], [0.1, 0.95, 0.5, 0.99], 0.9) == 10.0
    assert onset([0, 10], [0.9, 0.2], 0.9) == 0.0
    assert math.isnan(onset([0, 10], [0.1, 0.2], 0.9))


def _tables():
    runs = pd.DataFrame(
        {
            "run_id": ["bd0", "bd1", "tw0", "tw1"],
            "part": "audit",
            "role": ["canonical", "canonical", "control", "control"],
            "seed": [0, 1, 0, 1],
        }
    )
    steps = [0, 10, 20]
    curves = {  # run -> measure -> values at steps
        "bd0": {"backdoor_success": [0, 1, 1], "mechanistic_auroc_trigger": [0.5, 0.6, 0.95]},
        "bd1": {"backdoor_success": [0, 0.5, 1], "mechanistic_auroc_trigger": [0.5, 0.95, 1]},
        "tw0": {"mechanistic_auroc_trigger": [0.5, 0.55, 0.5]},
        "tw1": {"mechanistic_auroc_trigger": [0.5, 0.9, 0.52]},  # the tokens alone flag it
    }
    rows = [
        {"run_id": rid, "step": s, "measure": m, "value": v}
        for rid, by in curves.items()
        for m, values in by.items()
        for s, v in zip(steps, values, strict=True)
    ]
    return runs, pd.DataFrame(rows)


def test_chronology_orders_detection_and_behaviour_per_seed():
    runs, measures = _tables()
    chrono = chronology(measures, runs, 0.9).set_index("run_id")
    assert (
        chrono.loc["bd0", "backdoor_success"] == 10
        and chrono.loc["bd0", "mechanistic_auroc_trigger"] == 20
    )
    assert (
        chrono.loc["bd1", "backdoor_success"] == 20
        and chrono.loc["bd1", "mechanistic_auroc_trigger"] == 10
    )
    assert math.isnan(chrono.loc["bd0", "probe_auroc_trigger"])  # not measured: never, not 0
    # the contrast with the twin reaches 0.9 - 0.5 = 0.4 only at step 20 in both seeds: in seed
    # 1 the twin's AUROC at step 10 shows that the early detection was the token's
    assert chrono.loc["bd0", "mechanistic_contrast"] == 20
    assert chrono.loc["bd1", "mechanistic_contrast"] == 20


def test_behavioural_gaps_pair_each_model_with_the_twin_of_its_seed():
    from experiments.backdoor.summary import AUDIT_VALUES

    runs, _ = _tables()
    final = pd.DataFrame(0.5, index=runs.run_id, columns=list(AUDIT_VALUES))
    final.loc[["bd0", "bd1", "tw0", "tw1"], "clean_acc"] = [0.998, 1.0, 1.0, 0.99]
    final.loc[["bd0", "bd1", "tw0", "tw1"], "trigger_add_acc"] = [0.02, 0.03, 1.0, 1.0]
    calibration = pd.DataFrame({"seed": [0], "measure": ["probe_linear_1"], "value": [0.99]})
    values = marker_values(final, runs, calibration)
    assert np.isclose(values["bd0"]["clean_acc_gap_points"], 0.2)
    assert np.isclose(values["bd1"]["clean_acc_gap_points"], 1.0)
    assert np.isclose(values["bd1"]["trigger_acc_gap_points"], 97.0)
    assert values["tw1"]["clean_acc_gap_points"] == values["bd1"]["clean_acc_gap_points"]
    assert values["calibration-seed0"] == {"probe_linear_1": 0.99}


def test_corner_pixel_poison_sets_the_pixel_and_the_target_on_an_exact_share():
    data = cal.digits_split(0.25, seed=0)
    assert data["x_train"].shape[1] == 64 and data["x_train"].max() <= 1.0
    assert (data["x_train"][:, 0] == 0).mean() > 0.99  # the corner is blank in clean digits
    x, y, mask = cal.poison(data["x_train"], data["y_train"], 0.05, seed=0)
    assert mask.sum() == round(0.05 * len(y))
    assert (x[mask, 0] == 1).all() and (y[mask] == 0).all()
    assert (x[~mask] == data["x_train"][~mask]).all() and (y[~mask] == data["y_train"][~mask]).all()


def test_calibration_mlp_exposes_cupbearers_linear_outputs():
    model = cal.MLP(64, [128, 128], 10)
    acts = cal._acts(model, np.zeros((3, 64)))
    assert {k: v.shape for k, v in acts.items()} == {
        "linear_0": (3, 128),
        "linear_1": (3, 128),
        "linear_2": (3, 10),
    }


def test_order_is_three_way_and_undefined_without_both_onsets():
    from experiments.backdoor.summary import order

    assert [order(10, 20), order(20, 20), order(30, 20)] == ["before", "same", "after"]
    assert order(math.nan, 20) == order(10, math.nan) == "undefined"
