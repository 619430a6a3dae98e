"""Published vs reproduced: each marker kind evaluated on hand-made per-run values."""

import pandas as pd
import pytest

from alignlab.config import ConfigError
from alignlab.markers import evaluate, load_specs, seed_ranges
from alignlab.paper import macro_name, write_numbers

RUNS = pd.DataFrame({"run_id": ["a", "b", "c"], "seed": [0, 1, 0], "weight_decay": [1.0, 1.0, 0.0]})
VALUES = pd.DataFrame(
    [
        ("a", "early", 100.0),
        ("a", "late", 500.0),
        ("a", "acc", 1.0),
        ("b", "early", 300.0),
        ("b", "late", 200.0),
        ("b", "acc", 0.98),
        ("c", "early", 1.0),
        ("c", "late", 2.0),
        ("c", "acc", 0.1),
    ],
    columns=["run_id", "marker", "value"],
)
BASE = {
    "paper": "P",
    "claim": "c",
    "published": "p",
    "runs": "weight_decay > 0",
    "scales": ["laptop"],
}


def _status(spec, scale="laptop"):
    row = evaluate("exp", [{"id": "m", **BASE, **spec}], VALUES, RUNS, scale).iloc[0]
    return row.status, row.reproduced, row.seeds


def test_ordering_must_hold_in_every_selected_run():
    status, text, seeds = _status({"kind": "ordering", "events": ["early", "late"]})
    assert status == "fails" and text == "100 < 500; 300 < 200" and seeds == "0-1"
    assert (
        _status({"kind": "ordering", "events": ["early", "late"], "runs": "weight_decay == 0"})[0]
        == "holds"
    )


def test_range_uses_the_aggregate_over_runs():
    spec = {"kind": "range", "value": "acc", "low": 0.99, "high": 1.0}
    assert _status({**spec, "aggregate": "max"})[0] == "holds"
    assert _status({**spec, "aggregate": "min"})[:2] == ("fails", "min 0.98")


def test_number_uses_published_value_and_tolerance():
    spec = {"kind": "number", "value": "early", "aggregate": "mean", "published": 250}
    assert _status({**spec, "tolerance": 60})[0] == "holds"  # mean 200
    assert _status({**spec, "tolerance": 40})[0] == "fails"


def test_other_scales_read_not_run_never_fails():
    status, text, _ = _status(
        {"kind": "range", "value": "acc", "aggregate": "min", "low": 2.0, "high": 3.0},
        scale="smoke",
    )
    assert status == "not run at this scale" and text == ""


def test_no_selected_runs_fails_and_says_so():
    status, text, _ = _status(
        {
            "kind": "range",
            "value": "acc",
            "aggregate": "min",
            "low": 0,
            "high": 1,
            "runs": "weight_decay > 5",
        }
    )
    assert (status, text) == ("fails", "no runs")


def test_marker_spec_is_validated(tmp_path):
    path = tmp_path / "markers.yaml"
    path.write_text(
        "- {id: x, paper: P, claim: c, published: p, kind: range, runs: 'seed >= 0', "
        "scales: [laptop]}\n"
    )  # a range without value/aggregate/low/high
    with pytest.raises(ConfigError, match="'value' is a required property"):
        load_specs(path)


def test_numbers_become_one_macro_each(tmp_path):
    numbers = tmp_path / "results" / "my_exp" / "laptop" / "numbers.json"
    numbers.parent.mkdir(parents=True)
    numbers.write_text('{"circuit_end": 2400.0, "key_freqs": "5, 21", "p": 113}')
    out = tmp_path / "numbers.tex"
    write_numbers([numbers], out)
    text = out.read_text()
    assert "\\newcommand{\\myExpCircuitEnd}{2{,}400}" in text
    assert "\\newcommand{\\myExpKeyFreqs}{5, 21}" in text
    assert "\\newcommand{\\myExpP}{113}" in text
    assert macro_name("clock_pizza", "n_runs") == "clockPizzaNRuns"


def test_seed_ranges_shorten_consecutive_seeds():
    assert seed_ranges([3, 0, 1, 2, 7, 7, 9, 10]) == "0-3,7,9-10"
    assert seed_ranges([0, 1]) == "0-1"
    assert seed_ranges([5]) == "5"
