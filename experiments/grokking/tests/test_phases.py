"""Phase boundaries and markers on synthetic curves with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from experiments.grokking.phases import boundaries, phase_spans, run_markers

P = 113
CHANCE = math.log(P)
STEPS = np.arange(0, 10001, 100)


def _sigmoid_drop(high, low, at, width=300.0):
    """log-linear interpolation from `high` to `low` centred on step `at`."""
    s = 1 / (1 + np.exp(-(STEPS - at) / width))
    return np.exp((1 - s) * np.log(high) + s * np.log(low))


def _run(test_fall_at=6000, restricted_fall_at=3000) -> pd.DataFrame:
    rise = np.minimum(STEPS / 1000, 1.0)
    test_loss = (CHANCE + 15 * rise) * _sigmoid_drop(1.0, 1e-4, test_fall_at)
    curves = {
        "train_loss": _sigmoid_drop(CHANCE, 1e-6, 400, 100),
        "train_acc": np.where(STEPS >= 800, 1.0, 0.5),
        "test_loss": test_loss,
        "test_acc": np.where(test_fall_at + 800 <= STEPS, 1.0, 0.1),
        "restricted_loss": _sigmoid_drop(CHANCE, 1e-3, restricted_fall_at),
        "gini_W_E": np.linspace(0.2, 0.9, len(STEPS)),
        "n_key_freqs": np.where(STEPS < 3000, 56.0, 5.0),
        "gini_W_L": np.linspace(0.1, 0.8, len(STEPS)),
        # Falls slowly, then fast from the test-loss drop to 1500 steps after, then flat.
        "sum_sq_weights": np.interp(
            STEPS, [0, test_fall_at, test_fall_at + 1500, 10000], [3000, 2500, 1000, 900]
        ),
    }
    excluded = np.interp(STEPS, [0, 1000, test_fall_at, 10000], [CHANCE, 6, 12, 20])
    rows = [
        pd.DataFrame({"step": STEPS, "measure": m, "component": "", "value": v})
        for m, v in curves.items()
    ]
    rows.append(
        pd.DataFrame(
            {"step": STEPS, "measure": "excluded_loss", "component": "all", "value": excluded}
        )
    )
    return pd.concat(rows, ignore_index=True)


def test_boundaries_follow_the_documented_rule():
    b = boundaries(_run(), P)
    # train loss = log-sigmoid from ln p to 1e-6 centred at 400 (width 100) reaches 1e-5 (10x its
    # minimum) at step 573, so the first checkpoint at or below it is 600.
    assert b["memorization_end"] == 600
    assert 5000 < b["circuit_end"] < 6000  # test loss back below ln p
    assert b["cleanup_end"] == 6800  # first step with accuracy >= 99% and loss < 1% of chance
    assert b["memorization_end"] < b["circuit_end"] < b["cleanup_end"]


def test_markers_order_restricted_before_test_and_ratios():
    m = run_markers(_run(), P)
    assert m["restricted_fall"] < m["test_fall"]
    assert m["excluded_rise_ratio"] > 1
    assert m["norm_fall_ratio"] > 1
    assert m["gini_W_E_rise"] > 0 and m["gini_W_L_rise"] > 0
    assert m["n_key_freqs"] == 5 and m["final_test_acc"] == 1.0


def test_marker_fails_when_restricted_loss_falls_late():
    m = run_markers(_run(test_fall_at=4000, restricted_fall_at=7000), P)
    assert m["restricted_fall"] > m["test_fall"]


def test_run_that_never_generalizes_has_only_memorization():
    run = _run()
    stuck = run.measure.isin(["test_loss"])
    run.loc[stuck, "value"] = np.maximum(run.loc[stuck, "value"], 2 * CHANCE)
    run.loc[run.measure == "test_acc", "value"] = 0.1
    b = boundaries(run, P)
    assert math.isnan(b["circuit_end"]) and math.isnan(b["cleanup_end"])
    spans = phase_spans(b, last_step=10000)
    assert [name for name, _, _ in spans] == ["memorization", "circuit formation"]
    assert spans[0] == ("memorization", 0.0, b["memorization_end"])
    assert spans[-1][2] == 10000


@pytest.mark.parametrize("missing", ["test_loss", "test_acc"])
def test_missing_measure_is_an_error(missing):
    run = _run()
    with pytest.raises((KeyError, ValueError)):
        boundaries(run[run.measure != missing], P)
