"""Published vs reproduced: markers judged per replicate, on their null, NaN-safe, with sources."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from alignlab.config import ConfigError
from alignlab.markers import evaluate, load_specs, rule_text, seed_ranges
from alignlab.markers_table import (
    format_markers,
    latex_table,
    short_citations,
    summary,
    with_sources,
)
from alignlab.paper import format_number, macro_name, write_numbers, write_sections

ROOT = Path(__file__).resolve().parents[1]
NAN = math.nan
# Runs a-c: seeds 0-2 with weight decay; d: the wd = 0 null (seed 0); e: a second run of seed 0.
RUNS = pd.DataFrame(
    {
        "run_id": ["a", "b", "c", "d", "e"],
        "seed": [0, 1, 2, 0, 0],
        "weight_decay": [1.0, 1.0, 1.0, 0.0, 1.0],
        "group": ["x", "x", "x", "null", "y"],
    }
)


def _values(**columns) -> pd.DataFrame:
    """Long markers table from {marker: [value per run a-e]}."""
    rows = [
        (run_id, marker, float(value))
        for marker, values in columns.items()
        for run_id, value in zip(RUNS.run_id, values, strict=True)
    ]
    return pd.DataFrame(rows, columns=["run_id", "marker", "value"])


BASE = {
    "claim": "c",
    "published": "p",
    "source": {"paper": "nanda2023progress", "where": "Sec. 5"},
    "runs": "group == 'x'",
    "null": {"runs": "group == 'null'", "why": "no weight decay"},
    "scales": ["laptop"],
}
ACC = {"kind": "range", "value": "acc", "low": 0.99, "high": 1.0}


def _row(spec, values, scale="laptop"):
    return evaluate("exp", [{"id": "m", **BASE, **spec}], values, RUNS, scale).iloc[0]


def test_range_holds_in_every_seed_and_fails_on_its_null():
    row = _row(ACC, _values(acc=[1.0, 0.995, 0.999, 0.1, 1.0]))
    assert row.status == "holds" and row.replicates == "3/3 runs" and row.seeds == "0-2"
    assert row.null.startswith("fails (0/1) on group == 'null'")
    assert row.reproduced == "seed 0: 1; seed 1: 0.995; seed 2: 0.999"


def test_one_failing_seed_fails_the_marker_and_is_shown():
    row = _row(ACC, _values(acc=[1.0, 0.98, 1.0, 0.1, 1.0]))
    assert row.status == "fails" and row.replicates == "2/3 runs"
    assert "seed 1: 0.98 (x)" in row.reproduced


def test_a_null_on_which_the_rule_holds_means_the_marker_cannot_fail():
    row = _row(ACC, _values(acc=[1.0, 1.0, 1.0, 1.0, 1.0]))
    assert row.status == "cannot fail" and row.null.startswith("HOLDS (1/1)")
    no_null = _row({**ACC, "null": {"runs": "group == 'none'", "why": "w"}}, _values(acc=[1] * 5))
    assert no_null.status == "cannot fail" and no_null.null.startswith("no null runs")


@pytest.mark.parametrize("position", [0, 1, 2])
def test_a_nan_seed_never_holds_and_is_never_dropped(position):
    acc = [1.0, 1.0, 1.0, 0.1, 1.0]
    acc[position] = NAN
    row = _row(ACC, _values(acc=acc))
    assert row.status == "fails" and row.replicates == "2/3 runs" and row.seeds == "0-2"
    assert f"seed {position}: n/a (x)" in row.reproduced


def test_a_run_missing_from_the_values_counts_as_nan():
    values = _values(acc=[1.0, 1.0, 1.0, 0.1, 1.0])
    row = _row(ACC, values[values.run_id != "b"])
    assert row.status == "fails" and row.replicates == "2/3 runs"


@pytest.mark.parametrize("position", [0, 1])
def test_per_seed_aggregates_propagate_nan(position):
    # seed 0 has runs a and e; a NaN in either makes seed 0's min NaN, first or last
    acc = [1.0, 1.0, 1.0, 0.1, 1.0]
    acc[[0, 4][position]] = NAN
    spec = {**ACC, "runs": "weight_decay > 0", "per": "seed", "aggregate": "min"}
    row = _row(spec, _values(acc=acc))
    assert row.status == "fails" and row.replicates == "2/3 seeds"
    assert "seed 0: n/a (x)" in row.reproduced
    alone = _row({**spec, "runs": "run_id == 'a'"}, _values(acc=[NAN, 1, 1, 0.1, 1]))
    assert alone.replicates == "0/1 seeds"


def test_pooled_is_one_replicate_over_all_selected_runs():
    spec = {**ACC, "per": "pooled", "aggregate": "mean"}
    row = _row(spec, _values(acc=[1.0, 0.98, 1.0, 0.1, 1.0]))  # mean 0.9933
    assert row.status == "holds" and row.replicates == "1/1 pooled" and row.seeds == "0-2"
    assert row.reproduced == "mean of 3 runs: 0.9933"
    same = _row(spec, _values(acc=[1.0, 1.0, 1.0, 0.1, 1.0]))  # a sweep summary on every run
    assert same.reproduced == "one value on 3 runs: 1"
    two_of_seed_0 = _row({**ACC, "runs": "weight_decay > 0"}, _values(acc=[1.0] * 5))
    assert two_of_seed_0.reproduced.startswith("a: 1; b: 1; c: 1; e: 1")


def test_ordering_needs_a_lead_larger_than_the_gap_in_eval_units():
    spec = {"kind": "ordering", "events": ["early", "late"], "gap": 2, "gap_unit": "spacing"}
    spacing = [50] * 5
    holds = _values(early=[100, 100, 100, 0, 0], late=[250, 300, 201, 50, 0], spacing=spacing)
    row = _row(spec, holds)
    assert row.status == "holds" and row.reproduced == "seed 0: 150; seed 1: 200; seed 2: 101"
    # a lead of exactly two intervals is not more than two
    tied = _values(early=[100, 100, 100, 0, 0], late=[250, 300, 200, 50, 0], spacing=spacing)
    assert _row(spec, tied).status == "fails"
    # per seed, the leads of one run are aggregated, never one run's event with another's
    per_seed = {**spec, "runs": "weight_decay > 0", "per": "seed", "aggregate": "min"}
    mixed = _values(early=[100, 100, 100, 0, 0], late=[250, 300, 300, 50, 900], spacing=spacing)
    assert _row(per_seed, mixed).reproduced.startswith("seed 0: 150;")  # min(150, 900), not 250
    assert rule_text(spec) == "each run: late - early > 2 x spacing; all hold"


def test_number_within_tolerance_and_require_share():
    spec = {"kind": "number", "value": "n", "published": 5, "tolerance": 2}
    values = _values(n=[4, 7, 8, 30, 5])
    assert _row(spec, values).status == "fails"  # seed 2 is 8
    assert _row({**spec, "require": 0.6}, values).status == "holds"  # 2 of 3 >= 60%
    assert rule_text({**spec, "require": 0.6}) == "each run: n = 5 +/- 2; >= 60% hold"


def test_an_undefined_null_tests_nothing_and_a_null_holding_in_half_cannot_fail():
    undefined = _row(ACC, _values(acc=[1.0, 1.0, 1.0, NAN, 1.0]))
    assert undefined.status == "null undefined" and undefined.null.startswith("undefined (1 n/a)")
    spec = {**ACC, "null": {"runs": "run_id in ['d', 'e']", "why": "w"}}
    half = _row(spec, _values(acc=[1.0, 1.0, 1.0, 0.1, 1.0]))  # holds on e, not on d
    assert half.status == "cannot fail" and half.null.startswith("HOLDS (1/2)")


def test_a_claim_failing_on_its_own_runs_fails_whatever_its_null_says():
    undefined_null = _row(ACC, _values(acc=[1.0, 0.5, 1.0, NAN, 1.0]))
    assert undefined_null.status == "fails" and undefined_null.null.startswith("undefined")
    holding_null = _row(ACC, _values(acc=[1.0, 0.5, 1.0, 1.0, 1.0]))
    assert holding_null.status == "fails" and holding_null.null.startswith("HOLDS (1/1)")


def test_duplicate_values_are_an_error_and_infinity_holds_only_against_an_open_bound():
    values = _values(acc=[1.0] * 5)
    with pytest.raises(ValueError, match="more than one value"):
        _row(ACC, pd.concat([values, values.iloc[:1]]))
    ratio = {"kind": "range", "value": "r", "low": 2.0, "high": math.inf}
    assert _row(ratio, _values(r=[math.inf, 3, 2, 1, 0])).status == "holds"
    assert _row({**ratio, "high": 10.0}, _values(r=[math.inf, 3, 2, 1, 0])).status == "fails"
    with pytest.raises(KeyError, match="no marker or run column"):
        _row({**ratio, "value": "typo"}, values)


def test_a_constructed_null_value_is_judged_by_the_same_rule():
    spec = {**ACC, "null": {"runs": "group == 'x'", "value": "shuffled", "why": "w"}}
    row = _row(spec, _values(acc=[1.0] * 5, shuffled=[0.5, 1.0, 0.2, 0, 0]))
    assert row.status == "holds" and row.null.startswith("fails (1/3) on group == 'x' (shuffled)")


def test_controls_need_no_null_and_fewer_than_three_seeds_is_no_finding():
    control = {**ACC, "control": True, "runs": "group == 'null'"}
    spec = {k: v for k, v in {**BASE, **control}.items() if k != "null"}
    row = evaluate("exp", [{"id": "c", **spec}], _values(acc=[0, 0, 0, 1, 0]), RUNS, "laptop")
    assert row.iloc[0].status == "holds" and bool(row.iloc[0].control) and row.iloc[0].null == ""
    two = _row({**ACC, "runs": "run_id in ['a', 'b']"}, _values(acc=[1, 1, 1, 0, 1]))
    assert two.status == "too few seeds"
    smoke = {**ACC, "runs": "run_id in ['a', 'b']", "scales": ["smoke"]}
    assert _row(smoke, _values(acc=[1, 1, 1, 0, 1]), "smoke").status == "holds"


def test_other_scales_read_not_run_never_fails():
    row = _row(ACC, _values(acc=[0] * 5), scale="paper")
    assert row.status == "not run at this scale" and row.reproduced == ""


def test_marker_spec_is_validated(tmp_path):
    path = tmp_path / "markers.yaml"
    spec = "id: x, claim: c, published: p, source: {paper: k}, runs: 'seed >= 0', scales: [laptop]"
    path.write_text(f"- {{{spec}, kind: range, value: v, low: 0, high: 1}}\n")
    with pytest.raises(ConfigError, match="'null' is a required property"):
        load_specs(path)  # a finding without a null
    path.write_text(f"- {{{spec}, kind: range, null: {{runs: r, why: w}}}}\n")
    with pytest.raises(ConfigError, match="'value' is a required property"):
        load_specs(path)
    path.write_text(f"- {{{spec}, kind: range, value: v, low: 0, high: 1, control: true}}\n")
    assert load_specs(path)[0]["control"] is True


def test_every_real_marker_loads_and_cites_the_bibliography():
    cites = short_citations(ROOT / "paper/references.bib")
    assert cites["nanda2023progress"] == "Nanda et al. 2023"
    assert cites["hurley2009comparing"] == "Hurley and Rickard 2009"
    for path in sorted(ROOT.glob("experiments/*/markers.yaml")):
        for spec in load_specs(path):
            assert spec["source"]["paper"] in cites, (path, spec["id"])
            assert spec.get("control") or "null" in spec, (path, spec["id"])


def test_table_shows_sources_and_counts_controls_apart():
    specs = [
        {"id": "f", **BASE, **ACC},
        {"id": "g", **BASE, **ACC, "runs": "group == 'y'"},  # seed 0 only
        {"id": "c", **{k: v for k, v in BASE.items() if k != "null"}, **ACC, "control": True},
    ]
    table = evaluate("exp", specs, _values(acc=[1, 1, 1, 0, 1]), RUNS, "laptop")
    table = with_sources(table, ROOT / "paper/references.bib")
    assert table.cite.iloc[0] == "Nanda et al. 2023, Sec. 5"
    assert summary(table) == "findings: 1 holds, 1 too few seeds; controls: 1/1 hold"
    text = format_markers(table)
    assert "Sanity controls" in text and text.index("Findings") < text.index("Sanity")
    assert "(none)" in latex_table(table[table.control & ~table.control], ["claim"], ["3cm"])
    no_controls = format_markers(table[~table.control])
    assert "Empty DataFrame" not in no_controls and "(none)" in no_controls


def test_numbers_become_one_macro_each(tmp_path):
    numbers = tmp_path / "results" / "my_exp" / "laptop" / "numbers.json"
    numbers.parent.mkdir(parents=True)
    numbers.write_text('{"circuit_end": 2400.0, "key_freqs": "5, 21", "p": 113}')
    out = tmp_path / "numbers.tex"
    write_numbers([numbers], out)
    text = out.read_text()
    assert "\\newcommand{\\myExpCircuitEnd}{2400}" in text
    assert "\\newcommand{\\myExpKeyFreqs}{5, 21}" in text
    assert "\\newcommand{\\myExpP}{113}" in text
    assert macro_name("clock_pizza", "n_runs") == "clockPizzaNRuns"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (0.844, "0.844"),
        (0.9999, "0.9999"),  # three figures would read 1: a fraction is never a whole number
        (2400.0, "2400"),
        (1234.56, "1235"),
        (48000, "48{,}000"),
        (-1.56e-7, "\\ensuremath{-1.56\\times10^{-7}}"),
        (2.0e6, "\\ensuremath{2\\times10^{6}}"),
        (float("nan"), "n/a"),
    ],
)
def test_numbers_are_formatted_as_a_reader_expects(value, text):
    assert format_number(value) == text


def test_shares_are_percentages_and_nothing_else_is(tmp_path):
    path = tmp_path / "my_exp" / "laptop" / "numbers.json"
    path.parent.mkdir(parents=True)
    values = {"neuron_share": 0.973, "top_share": 0.99996, "top_share_random": 0.348, "loss": 0.973}
    path.write_text(json.dumps(values))
    write_numbers([path], tmp_path / "numbers.tex")
    text = (tmp_path / "numbers.tex").read_text()
    assert "\\newcommand{\\myExpNeuronShare}{97.3\\%}" in text
    assert "\\newcommand{\\myExpTopShare}{99.996\\%}" in text  # never rounded up to 100%
    assert "\\newcommand{\\myExpTopShareRandom}{34.8\\%}" in text
    assert "\\newcommand{\\myExpLoss}{0.973}" in text


def test_section_list_is_relative_to_paper_so_the_same_on_every_machine(tmp_path):
    write_sections(["grokking", "llc"], tmp_path / "sections.tex")
    text = (tmp_path / "sections.tex").read_text()
    lines = text.splitlines()[1:]
    assert lines == [
        "\\input{../experiments/grokking/paper.tex}",
        "\\input{../experiments/llc/paper.tex}",
    ]


def test_seed_ranges_shorten_consecutive_seeds():
    assert seed_ranges([3, 0, 1, 2, 7, 7, 9, 10]) == "0-3,7,9-10"
    assert seed_ranges([0, 1]) == "0-1"
    assert seed_ranges([5]) == "5"


def test_the_discussion_groups_findings_by_status_and_leaves_controls_out():
    from alignlab.markers_table import discussion_tex

    rows = [
        ("a", "x_y", "claim one", "holds", False),
        ("b", "x_y", "claim two", "fails", False),
        ("c", "x_y", "claim three", "not run at this scale", False),
        ("d", "x_y", "oracle check", "holds", True),
    ]
    table = pd.DataFrame(rows, columns=["id", "experiment", "claim", "status", "control"])
    table = table.assign(reproduced="seed 0: 0.5 (x)", rule="each run: v >= 1; all hold")
    tex = discussion_tex(table)
    assert "\\paragraph{What holds.} 1 of the 3 findings" in tex and "oracle check" not in tex
    assert "\\item x y: claim two (reproduced seed 0: 0.5 (x); rule: each run: v" in tex
    assert "\\paragraph{Not run at this scale.} 1 of the 3" in tex
    assert "cannot decide" not in tex  # no such findings: no empty paragraph


def test_undefined_references_and_citations_are_found_in_the_latex_log(tmp_path):
    from alignlab.paper import unresolved_references

    log = tmp_path / "main.log"
    log.write_text(
        "LaTeX Warning: Reference `fig:llc-mlp' on page 3 undefined on input line 40.\n"
        "Package natbib Warning: Citation `nanda2023' on page 1 undefined on input line 9.\n"
        "LaTeX Warning: Citation `power2022grokking' on page 2 undefined on input line 12.\n"
        "LaTeX Warning: There were undefined references.\n"
    )
    assert unresolved_references(log) == ["fig:llc-mlp", "nanda2023", "power2022grokking"]
