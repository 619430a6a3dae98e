"""Every resolved run is validated before any work: grid values, NaN / inf, integers that are
floats, an even or composite p, an empty split, huge seeds, duplicate YAML keys and --config
typos each stop with a message naming the key and the value."""

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from alignlab.cli import main as cli
from alignlab.config import (
    ConfigError,
    check_dag_config,
    expand_runs,
    load_experiment,
    load_yaml,
    resolved_runs,
)
from alignlab.data import OPERATIONS, build_dataset
from alignlab.validation import modular_split, pairs_split

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"


def _edited(tmp_path: Path, experiment: str, path: tuple, value) -> Path:
    """A copy of the experiment whose config has `value` at `path` (YAML writes nan as .nan)."""
    folder = tmp_path / experiment
    shutil.copytree(EXPERIMENTS / experiment, folder)
    config = load_yaml(folder / "config.yaml")
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


# experiment, where (scale first), value, run id prefix ("": caught in the file itself), the key
# as named, the value as shown, the rule
G, S, D = "smoke.grid", "smoke.sweeps.fraction.grid", "smoke.defaults"
BAD = [
    ("grokking", f"{G}.d_model", [0], "dm0-seed0-", "d_model", "0", "must be >= 1"),
    ("clock_pizza", f"{G}.attn_rate", [0.0, 1.5], "attn1.5-", "attn_rate", "1.5", "must be <= 1"),
    ("scaling", f"{S}.frac_train", [1.5], "fraction-", "frac_train", "1.5", "must be < 1"),
    ("grokking", f"{G}.lr", [-1.0], "lr-1.0-seed0-", "lr", "-1.0", "must be > 0"),
    ("grokking", f"{G}.lr", [math.nan], "lrnan-", "lr", "nan", "must be a finite number"),
    ("grokking", f"{D}.lr", math.inf, "", f"{D}.lr", "inf", "must be a finite number"),
    ("grokking", f"{D}.frac_train", math.nan, "", f"{D}.frac_train", "nan", "a finite number"),
    ("grokking", "smoke.analysis.key_freq_threshold", math.nan, "",
     "smoke.analysis.key_freq_threshold", "nan", "must be a finite number"),
    ("grokking", f"{D}.p", 23.0, "", f"{D}.p", "23.0", "must be an integer"),
    ("grokking", f"{D}.d_model", True, "", f"{D}.d_model", "True", "must be an integer"),
    ("grokking", f"{G}.seed", [2**70], f"seed{2**70}-", "seed", str(2**70),
     "must be <= 4294967295"),
    ("grokking", f"{D}.p", 24, "", f"{D}.p", "24", "must be an odd prime"),
    ("grokking", f"{D}.p", 25, "", f"{D}.p", "25", "must be an odd prime"),
    ("grokking", f"{D}.p", 100000, "", f"{D}.p", "100000", "must be <= 2000"),
    ("grokking", f"{D}.frac_train", 0.001, "", f"{D}.frac_train", "0.001", "leaves 0 training"),
    ("scaling", f"{S}.frac_train", [0.001], "fraction-", "frac_train", "0.001", "leaves 0 train"),
    ("llc", "smoke.mlp.grid.frac_train", [1e-4], "mlp-frac0.0001-", "frac_train", "0.0001",
     "leaves 0 training and 2809 test examples"),
    ("reward", f"{D}.heldout_frac", 0.999, "", f"{D}.heldout_frac", "0.999", "leaves 0 train"),
    ("length_shortcut", f"{G}.seed", [-1], "seed-1-", "seed", "-1", "must be >= 0"),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=[f"{c[0]}-{c[1]}={c[5]}" for c in BAD])
def test_bad_value_stops_the_plan_naming_run_key_value_and_rule(tmp_path, case):
    experiment, where, value, run, key, shown, rule = case
    folder = _edited(tmp_path, experiment, tuple(where.split(".")), value)
    with pytest.raises(ConfigError) as err:
        load_experiment(folder, "laptop")  # every scale is checked, whichever is planned
    message = str(err.value)
    assert message.startswith(f"invalid {experiment} config (")
    if run:  # a resolved run: the scale and the run id, then the run's own key
        assert f"(scale smoke, run {run}" in message
    assert f"key {key}: value {shown} is not allowed: " in message and rule in message


def test_grid_error_has_the_one_message_format(tmp_path):
    folder = _edited(tmp_path, "grokking", ("smoke", "grid", "d_model"), [0])
    with pytest.raises(ConfigError) as err:
        load_experiment(folder, "smoke")
    block = yaml.safe_load((folder / "config.yaml").read_text())["smoke"]
    (run_id,) = [rid for rid in expand_runs(block) if rid.startswith("dm0-")]  # not the control
    assert str(err.value) == (
        f"invalid grokking config (scale smoke, run {run_id}): "
        "key d_model: value 0 is not allowed: must be >= 1"
    )


def test_cli_names_the_bad_grid_value(tmp_path, capsys):
    _edited(tmp_path / "experiments", "grokking", ("smoke", "grid", "d_model"), [0])
    assert cli(["--root", str(tmp_path), "validate", "grokking", "--scale", "smoke"]) == 1
    assert "key d_model: value 0 is not allowed" in capsys.readouterr().err


def test_duplicate_yaml_key_is_an_error_naming_key_and_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("smoke:\n  defaults:\n    lr: 0.001\n    p: 23\n    lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"key 'lr' appears twice in one mapping \(lines 3 and 5"):
        load_yaml(path)
    # a merge key's values may be overridden: that is what anchors are for
    path.write_text("a: &a {lr: 1, p: 3}\nb:\n  <<: *a\n  lr: 2\n")
    assert load_yaml(path)["b"] == {"lr": 2, "p": 3}


def test_duplicate_key_in_a_markers_file_is_an_error(tmp_path):
    from alignlab.markers import load_specs

    path = tmp_path / "markers.yaml"
    path.write_text("- id: a\n  kind: range\n  id: b\n")
    with pytest.raises(ConfigError, match="key 'id' appears twice"):
        load_specs(path)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"scal": "smoke"}, "unknown key scal (value 'smoke'); allowed keys: ['only', 'pdf'"),
        ({"only": "grokkin"}, "key only: value 'grokkin' is not allowed: must be one of ["),
        ({"only": "grokking,llcc"}, "key only: value 'llcc' is not allowed"),
        ({"scale": "huge"}, "key scale: value 'huge' is not allowed"),
        ({"vectorize": "yes"}, "key vectorize: value 'yes' is not allowed"),
    ],
)
def test_dag_config_typos_are_errors_listing_the_valid_ones(config, says):
    allowed = {"scale": ["smoke", "laptop", "paper"], "only": ["grokking", "llc"]}
    allowed |= {"pdf": ["auto", "off"], "vectorize": ["auto", "on", "off"]}
    with pytest.raises(ConfigError, match="invalid --config") as err:
        check_dag_config(config, allowed)
    assert says in str(err.value)
    check_dag_config({"scale": "smoke", "only": "grokking,llc", "pdf": "off"}, allowed)


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["scale=smoke", "only=grokkin"], "key only: value 'grokkin' is not allowed"),
        (["scal=smoke"], "unknown key scal (value 'smoke')"),
    ],
)
def test_snakemake_refuses_config_typos_before_any_job(tmp_path, args, says):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "1"]
    result = subprocess.run(
        [*cmd, "--directory", str(tmp_path), "--config", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert says in result.stdout + result.stderr
    assert "modular_train" not in result.stdout  # no job was planned


def _rules_runs(experiment: str, block: dict) -> dict:
    """The runs as each rules.smk expands them (independently of the schemas' x-runs)."""
    from experiments.circuit_discovery.summary import zoo_runs
    from experiments.reward.runs import expand_ensemble
    from experiments.reward.runs import expand_runs as reward_runs
    from experiments.scaling.sweeps import expand_sweeps

    if experiment == "circuit_discovery":
        return zoo_runs(block)
    if experiment == "scaling":
        return expand_sweeps(block)
    if experiment == "llc":
        return {f"mlp-{rid}": run for rid, run in expand_runs(block["mlp"]).items()}
    if experiment == "reward":
        return {**reward_runs(block)[0], **expand_ensemble(block)[0]}
    return expand_runs(block)


SHIPPED = sorted(p.parent.name for p in EXPERIMENTS.glob("*/rules.smk"))


@pytest.mark.parametrize("experiment", SHIPPED)
def test_every_shipped_config_validates_with_its_true_run_count(experiment, capsys):
    for scale in ("smoke", "laptop", "paper"):
        runs = resolved_runs(EXPERIMENTS / experiment, scale)
        expected = _rules_runs(experiment, load_experiment(EXPERIMENTS / experiment, scale))
        assert runs and sorted(runs) == sorted(expected)
        assert cli(["--root", str(REPO), "validate", experiment, "--scale", scale]) == 0
        assert f"config valid; {len(expected)} runs" in capsys.readouterr().out


def _bad_entry_calls(tmp_path):
    """(training entry, call with a bad run, the run dir it must not create, message)."""
    from alignlab import modular as grokking
    from alignlab import vectorized_train
    from experiments.backdoor import train as backdoor
    from experiments.length_shortcut import experiment as length_shortcut
    from experiments.llc import mlp as llc
    from experiments.reward import train as reward

    grok = resolved_runs(EXPERIMENTS / "grokking", "smoke")
    grok_run = {**next(iter(grok.values())), "d_model": 0}
    llc_run = {**next(iter(resolved_runs(EXPERIMENTS / "llc", "smoke").values())), "p": 23.0}
    rw_run = {**next(iter(resolved_runs(EXPERIMENTS / "reward", "smoke").values())), "lr": math.inf}
    ls_run = {**next(iter(resolved_runs(EXPERIMENTS / "length_shortcut", "smoke").values()))}
    ls_run["heldout_frac"] = 0.999
    bd_run = {**next(iter(resolved_runs(EXPERIMENTS / "backdoor", "smoke").values())), "p": 21}
    bd_target = {**bd_run, "p": 23, "target": 23}
    scal_run = {**next(iter(resolved_runs(EXPERIMENTS / "scaling", "smoke").values())), "p": 25}
    layout = tmp_path / "results"
    d = {name: layout / name / "smoke" / "runs" / "bad-run" for name in ("grokking", "reward")}
    d |= {"llc": layout / "llc" / "smoke" / "mlp" / "bad-run", "direct": tmp_path / "direct"}
    d |= {"group": tmp_path / "group"}
    d |= {"length_shortcut": layout / "length_shortcut" / "smoke" / "runs" / "bad-run"}
    d |= {"backdoor": layout / "backdoor" / "smoke" / "runs" / "bad-run"}
    nowhere = tmp_path / "missing.parquet"
    return [
        (lambda: grokking.train_run(grok_run, nowhere, d["grokking"], threads=1), d["grokking"],
         "invalid grokking config (scale smoke, run bad-run): key d_model: value 0 "),
        (lambda: grokking.train_run(grok_run, nowhere, d["direct"], threads=1), d["direct"],
         "invalid modular_run config (run direct): key d_model: value 0 "),
        (lambda: llc.train_mlp(llc_run, nowhere, d["llc"]), d["llc"],
         "invalid llc config (scale smoke, run bad-run): key p: value 23.0 "),
        (lambda: reward.run_experiment(rw_run, {}, {}, *[nowhere] * 2, d["reward"], *[nowhere] * 3),
         d["reward"], "invalid reward config (scale smoke, run bad-run): key lr: value inf "),
        (lambda: length_shortcut.train(ls_run, {}, d["length_shortcut"], nowhere, nowhere),
         d["length_shortcut"], "key heldout_frac: value 0.999 is not allowed: leaves 0 training"),
        (lambda: backdoor.train(bd_run, d["backdoor"]), d["backdoor"],
         "invalid backdoor config (scale smoke, run bad-run): key p: value 21 is not allowed"),
        (lambda: backdoor.train(bd_target, d["backdoor"]), d["backdoor"],
         "key target: value 23 is not allowed: must be an answer, 0 <= target < p = 23"),
        (lambda: vectorized_train.train_group([scal_run], nowhere, d["group"], [d["direct"]], 1),
         d["direct"],
         "invalid modular_run config (run direct): key p: value 25 is not allowed: must be an odd"),
    ]  # fmt: skip


def test_training_entries_refuse_a_bad_run_before_writing_anything(tmp_path):
    for call, run_dir, says in _bad_entry_calls(tmp_path):
        with pytest.raises(ConfigError) as err:
            call()
        assert says in str(err.value)
        assert not run_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no file anywhere


@pytest.mark.parametrize("op", ["add", "div", "x3_plus_xy"])
@pytest.mark.parametrize(("p", "frac"), [(3, 0.2), (5, 0.5), (23, 0.001), (23, 0.999), (13, 0.3)])
def test_modular_split_sizes_match_the_dataset(p, frac, op):
    ds = build_dataset(p, op, frac, seed=0)
    assert modular_split(p, op, frac) == (int(ds.is_train.sum()), int((~ds.is_train).sum()))
    assert OPERATIONS[op][1] == (op == "div")


@pytest.mark.parametrize(("n", "frac"), [(10, 0.1), (10, 0.99), (200, 0.999), (16000, 0.1)])
def test_pairs_split_sizes_match_the_reward_split(n, frac):
    from alignlab.preference.train import split_pairs

    pairs = {"x": np.arange(n, dtype=np.int64)}
    train, test = split_pairs(pairs, n, frac)
    assert pairs_split(n, frac) == (len(train["x"]), len(test["x"]))
