"""The scaling experiment: milestones, Liu et al.'s phases, sweeps, config errors, tables."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from alignlab.config import ConfigError, load_experiment
from alignlab.data import build_dataset, save_dataset
from alignlab.modular import train_run
from experiments.scaling.sweeps import (
    classify_phase,
    collect,
    describe_model,
    expand_sweeps,
    fraction_trend,
    markers,
    milestone,
    numbers,
    summarize_log,
    summarize_run,
    vectorized_groups,
)

REPO = Path(__file__).resolve().parents[3]
EXPERIMENT = REPO / "experiments" / "scaling"
ANALYSIS = {"target_acc": 0.99, "phase_acc": 0.9, "phase_gap": 1000, "key_freq_threshold": 0.2}
NAN = math.nan


def _log(train_acc, test_acc, every=100):
    steps = np.arange(len(train_acc)) * every
    return pd.DataFrame({"step": steps, "train_acc": train_acc, "test_acc": test_acc})


def test_milestone_is_the_first_step_at_or_above_the_threshold():
    log = _log([0.1, 0.5, 0.9, 0.85, 1.0], [0.0, 0.2, 0.3, 0.99, 0.995])
    assert milestone(log, "train_acc", 0.9) == 200  # >= counts; a later dip does not matter
    assert milestone(log, "test_acc", 0.99) == 300
    assert math.isnan(milestone(log, "test_acc", 0.999))  # never: NaN, not dropped


@pytest.mark.parametrize(
    ("train", "test", "phase"),
    [
        (500, 1400, "comprehension"),  # gap 900 <= 1e3
        (500, 1500, "comprehension"),  # gap exactly 1e3: within
        (500, 1501, "grokking"),  # gap > 1e3
        (200, 40_000, "grokking"),
        (300, NAN, "memorization"),
        (NAN, NAN, "confusion"),
        (NAN, 700, "comprehension"),  # test without train (not seen): counts as comprehension
    ],
)
def test_liu_phases_on_hand_made_milestones(train, test, phase):
    assert classify_phase(train, test, gap=1000) == phase


def test_summarize_log_flags_a_run_that_never_generalizes():
    memorizer = _log([0.3, 0.95, 1.0, 1.0], [0.05, 0.1, 0.2, 0.3])
    row = summarize_log(memorizer, ANALYSIS)
    assert row["phase"] == "memorization" and row["train_milestone"] == 100
    assert math.isnan(row["steps_to_target"]) and row["generalized"] is False
    assert row["final_step"] == 300 and row["final_test_acc"] == 0.3
    grokker = _log([0.95] + [1.0] * 20, [0.05] * 15 + [0.95, 0.995] + [1.0] * 4)
    row = summarize_log(grokker, ANALYSIS)
    assert (row["train_milestone"], row["test_milestone"], row["steps_to_target"]) == (
        0,
        1500,
        1600,
    )
    assert row["phase"] == "grokking" and row["generalized"] is True


def test_fraction_trend_counts_never_as_slowest():
    assert fraction_trend(np.array([0.3, 0.5, 0.7]), np.array([NAN, 800.0, 300.0])) == -1.0
    assert fraction_trend(np.array([0.3, 0.5, 0.7]), np.array([300.0, 500.0, 800.0])) == 1.0
    assert fraction_trend(np.array([0.3, 0.5]), np.array([NAN, NAN])) == 0.0  # none: no trend
    assert math.isnan(fraction_trend(np.array([0.5]), np.array([300.0])))


def test_every_scale_expands_into_the_four_sweeps():
    for scale in ("smoke", "laptop", "paper"):
        runs = expand_sweeps(load_experiment(EXPERIMENT, scale))
        assert {run["sweep"] for run in runs.values()} == {
            "fraction",
            "phase",
            "width",
            "weight_decay",
        }
        phase = [r for r in runs.values() if r["sweep"] == "phase"]
        assert all(r["embed_lr"] == 1e-3 and r["embed_weight_decay"] == 0 for r in phase)
        assert any(r["weight_decay"] == 0 for r in runs.values() if r["sweep"] == "weight_decay")
    laptop = expand_sweeps(load_experiment(EXPERIMENT, "laptop"))
    fraction = [r for r in laptop.values() if r["sweep"] == "fraction"]
    assert {"sub", "div"} & {r["op"] for r in fraction}  # a non-commutative operation
    assert len({r["op"] for r in fraction}) >= 2
    # every point of a scored sweep rests on 3 seeds
    for sweep in ("fraction", "phase", "weight_decay"):
        points = {}
        for r in laptop.values():
            if r["sweep"] == sweep:
                key = (r["op"], r["frac_train"], r["lr"], r["weight_decay"])
                points.setdefault(key, set()).add(r["seed"])
        assert points and all(len(seeds) >= 3 for seeds in points.values()), sweep
    paper = [r for r in expand_sweeps(load_experiment(EXPERIMENT, "paper")).values()]
    assert {(r["p"], r["steps"]) for r in paper} == {(97, 100_000)}
    # Power et al.'s setup for the fraction and phase sweeps; Nanda's one layer for the others
    for run in paper:
        power = run["sweep"] in ("fraction", "phase")
        shape = (run.get("n_layers", 1), run.get("normalization", "none"), run.get("batch_size"))
        assert shape == ((2, "LN", 512) if power else (1, "none", None)), run


def test_vectorized_groups_share_shape_and_dataset():
    runs = expand_sweeps(load_experiment(EXPERIMENT, "laptop"))
    groups = vectorized_groups(runs)
    phase = [ids for ids in groups.values() if runs[ids[0]]["sweep"] == "phase"]
    n_phase = sum(run["sweep"] == "phase" for run in runs.values())
    assert n_phase >= 15 and len(phase) == 1 and len(phase[0]) == n_phase  # the whole grid
    for ids in groups.values():
        shapes = {(runs[i]["d_model"], runs[i]["p"], runs[i]["frac_train"]) for i in ids}
        assert len(shapes) == 1
    # the vectorized model is the fast one-layer full-batch model: Power's runs train alone
    paper = expand_sweeps(load_experiment(EXPERIMENT, "paper"))
    grouped = {paper[i]["sweep"] for ids in vectorized_groups(paper).values() for i in ids}
    assert grouped == {"width", "weight_decay"}


def test_bad_config_fails_naming_the_key(tmp_path):
    config = yaml.safe_load((EXPERIMENT / "config.yaml").read_text())
    config["laptop"]["sweeps"]["phase"]["grid"]["weight_decay"] = [0.0, -1.0]
    config["smoke"]["analysis"]["phase_gap"] = "long"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "config.schema.yaml").write_text((EXPERIMENT / "config.schema.yaml").read_text())
    with pytest.raises(ConfigError) as err:
        load_experiment(tmp_path, "laptop")
    assert "key smoke.analysis.phase_gap: value 'long'" in str(err.value)
    # grid values are checked per run, when expanded; an unknown sweep key names itself
    config = yaml.safe_load((EXPERIMENT / "config.yaml").read_text())
    config["laptop"]["sweeps"]["depth"] = {"grid": {"seed": [0]}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="unknown key laptop.sweeps.depth"):
        load_experiment(tmp_path, "laptop")


def test_run_to_tables_end_to_end(tmp_path, tiny_run):
    """Train two tiny runs, summarize, collect, markers and numbers: one row per run."""
    ds = build_dataset(tiny_run["p"], "add", tiny_run["frac_train"], 0)
    save_dataset(ds, tmp_path / "data.parquet")
    summaries = []
    for wd in (0.0, 1.0):
        run = {**tiny_run, "weight_decay": wd, "sweep": "weight_decay", "steps": 30}
        run_dir = tmp_path / f"wd{wd}"
        train_run(run, tmp_path / "data.parquet", run_dir, threads=1)
        summarize_run(f"wd{wd}", run, run_dir, ANALYSIS, run_dir / "summary.parquet")
        summaries.append(run_dir / "summary.parquet")
    collect(summaries, tmp_path / "runs.parquet", tmp_path / "curves.parquet")
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(runs.run_id) == ["wd0.0", "wd1.0"]
    assert {"weight_decay", "frac_train", "steps_to_target", "phase", "n_key_freqs"} <= set(
        runs.columns
    )
    assert runs.n_key_freqs.between(1, 6).all()
    curves = pd.read_parquet(tmp_path / "curves.parquet")
    assert {"train_acc", "test_acc", "train_loss", "test_loss"} == set(curves.measure)
    markers(tmp_path / "runs.parquet", tmp_path / "markers.parquet")
    values = pd.read_parquet(tmp_path / "markers.parquet")
    assert list(values.columns) == ["run_id", "marker", "value"]
    numbers(tmp_path / "runs.parquet", tmp_path / "numbers.json")
    assert "control_test_acc" in (tmp_path / "numbers.json").read_text()


def test_paper_names_the_model_each_scale_runs():
    shape = {"p": 97, "d_model": 128, "n_heads": 4, "d_head": 32, "d_mlp": 512}
    one = pd.Series({**shape, "n_layers": np.nan, "normalization": np.nan, "batch_size": np.nan})
    assert describe_model(one).endswith("at full batch")
    power = pd.Series({**shape, "n_layers": 2, "normalization": "LN", "batch_size": 512})
    assert describe_model(power).startswith("2-layer pre-LayerNorm transformers")
    assert "minibatches of at most 512" in describe_model(power)
