import copy
import shutil
from pathlib import Path

import pytest
import yaml

from alignlab.config import ConfigError, expand_runs, load_experiment, load_yaml, validate

REPO = Path(__file__).resolve().parents[1]
GROKKING = REPO / "experiments" / "grokking"


@pytest.fixture
def config():
    return load_yaml(GROKKING / "config.yaml")


@pytest.fixture
def schema():
    return load_yaml(GROKKING / "config.schema.yaml")


@pytest.mark.parametrize("scale", ["smoke", "laptop", "paper"])
def test_shipped_config_is_valid_at_every_scale(scale):
    runs = expand_runs(load_experiment(GROKKING, scale))
    assert runs
    for run in runs.values():
        assert run["op"] == "add"


def test_paper_scale_is_the_published_config():
    runs = expand_runs(load_experiment(GROKKING, "paper"))
    canonical = [r for r in runs.values() if r["weight_decay"] == 1.0 and r["seed"] == 0][0]
    assert canonical["p"] == 113 and canonical["frac_train"] == 0.3
    assert (
        canonical["d_model"],
        canonical["n_heads"],
        canonical["d_head"],
        canonical["d_mlp"],
    ) == (
        128,
        4,
        32,
        512,
    )
    assert canonical["lr"] == 1e-3 and canonical["betas"] == [0.9, 0.98]
    assert canonical["warmup_steps"] == 10 and canonical["steps"] == 40000
    assert canonical["checkpoint_every"] == 100
    assert any(r["weight_decay"] == 0 for r in runs.values())  # the control


def test_run_ids_are_readable_and_unique():
    block = {
        "defaults": {"seed": 0, "weight_decay": 1.0},
        "grid": {"seed": [0, 1]},
        "runs": [{"label": "control", "weight_decay": 0.0}],
    }
    runs = expand_runs(block)
    assert len(runs) == 3
    assert sorted(rid.rsplit("-", 1)[0] for rid in runs) == ["control-wd0.0", "seed0", "seed1"]


BAD_VALUES = [
    (("laptop", "defaults", "lr"), -1.0, "laptop.defaults.lr"),
    (("laptop", "defaults", "p"), 2, "laptop.defaults.p"),
    (("smoke", "defaults", "op"), "mul", "smoke.defaults.op"),
    (("paper", "defaults", "frac_train"), 1.5, "paper.defaults.frac_train"),
    (("laptop", "defaults", "checkpoint_spacing"), "cubic", "laptop.defaults.checkpoint_spacing"),
    (("laptop", "defaults", "compile"), "yes", "laptop.defaults.compile"),
    (("laptop", "defaults", "betas"), [0.9], "laptop.defaults.betas"),
    (("laptop", "defaults", "device"), "tpu", "laptop.defaults.device"),
    (("laptop", "defaults", "steps"), 0, "laptop.defaults.steps"),
    (("laptop", "analysis", "key_freq_threshold"), 2.0, "laptop.analysis.key_freq_threshold"),
    (("laptop", "analysis", "canonical_seed"), -1, "laptop.analysis.canonical_seed"),
    (("laptop", "defaults", "d_model"), 0, "laptop.defaults.d_model"),
    (("laptop", "defaults", "warmup_steps"), -5, "laptop.defaults.warmup_steps"),
    (("laptop", "defaults", "act_fn"), "tanh", "laptop.defaults.act_fn"),
    (("laptop", "defaults", "attn_rate"), 1.5, "laptop.defaults.attn_rate"),
    (("laptop", "defaults", "weight_decay"), -0.1, "laptop.defaults.weight_decay"),
    (("laptop", "defaults", "early_stop_acc"), 0, "laptop.defaults.early_stop_acc"),
    (("laptop", "defaults", "checkpoint_every"), 0, "laptop.defaults.checkpoint_every"),
    (("laptop", "defaults", "seed"), 1.5, "laptop.defaults.seed"),
    (("paper", "defaults", "n_heads"), "four", "paper.defaults.n_heads"),
    (("laptop", "grid", "seed"), 0, "laptop.grid.seed"),
    (("laptop", "grid", "seed"), [], "laptop.grid.seed"),
    (("laptop", "runs"), {"label": "control"}, "laptop.runs"),
]


def _set(cfg: dict, path: tuple, value) -> dict:
    cfg = copy.deepcopy(cfg)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return cfg


@pytest.mark.parametrize(("path", "value", "key"), BAD_VALUES)
def test_bad_value_names_key_value_and_rule(config, schema, path, value, key):
    with pytest.raises(ConfigError) as err:
        validate(_set(config, path, value), schema)
    message = str(err.value)
    assert f"key {key}" in message
    assert repr(value) in message


def test_unknown_key_is_named_with_allowed_keys(config, schema):
    with pytest.raises(ConfigError, match=r"unknown key laptop\.defaults\.learning_rate; allowed"):
        validate(_set(config, ("laptop", "defaults", "learning_rate"), 1e-3), schema)


def test_unknown_key_in_a_grid_is_named(config, schema):
    with pytest.raises(ConfigError, match="laptop.grid"):
        validate(_set(config, ("laptop", "grid"), {"sead": [0, 1]}), schema)


def test_unknown_key_in_a_run_is_named(config, schema):
    bad = _set(config, ("laptop", "runs"), [{"label": "control", "wieght_decay": 0.0}])
    with pytest.raises(ConfigError, match=r"unknown key laptop\.runs\.0\.wieght_decay"):
        validate(bad, schema)


def test_bad_run_label_is_named(config, schema):
    with pytest.raises(ConfigError, match=r"key laptop\.runs\.0\.label: value 'Control run'"):
        validate(_set(config, ("laptop", "runs"), [{"label": "Control run"}]), schema)


def test_missing_required_key_is_named(config, schema):
    del config["laptop"]["defaults"]["lr"]
    with pytest.raises(ConfigError, match="key laptop.defaults: 'lr' is a required property"):
        validate(config, schema)


def test_every_violation_is_listed_at_once(config, schema):
    bad = _set(_set(config, ("laptop", "defaults", "lr"), -1.0), ("smoke", "defaults", "p"), 1)
    with pytest.raises(ConfigError) as err:
        validate(bad, schema)
    assert "laptop.defaults.lr" in str(err.value) and "smoke.defaults.p" in str(err.value)


def test_missing_scale_is_named(config, schema):
    del config["paper"]
    with pytest.raises(ConfigError, match="'paper' is a required property"):
        validate(config, schema)


def test_unknown_scale_is_refused():
    with pytest.raises(ConfigError, match="scale"):
        load_experiment(GROKKING, "huge")


def test_bad_config_file_fails_before_any_work(tmp_path, config):
    exp = tmp_path / "grokking"
    shutil.copytree(GROKKING, exp)
    (exp / "config.yaml").write_text(
        yaml.safe_dump(_set(config, ("laptop", "defaults", "lr"), "fast"))
    )
    with pytest.raises(ConfigError, match="laptop.defaults.lr"):
        load_experiment(exp, "laptop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grokking"]


def test_cli_validate_lists_runs_and_names_bad_keys(tmp_path, config, capsys):
    from alignlab.cli import main

    assert main(["--root", str(REPO), "validate", "grokking", "--scale", "smoke"]) == 0
    assert "control-wd0.0-" in capsys.readouterr().out
    exp = tmp_path / "experiments" / "grokking"
    shutil.copytree(GROKKING, exp)
    (exp / "config.yaml").write_text(
        yaml.safe_dump(_set(config, ("smoke", "defaults", "seed"), -3))
    )
    assert main(["--root", str(tmp_path), "validate", "grokking", "--scale", "smoke"]) == 1
    assert "key smoke.defaults.seed: value -3" in capsys.readouterr().err


def test_a_run_key_no_config_takes_is_named_not_dropped(tiny_run):
    from alignlab.modular import model_config, train_config

    assert train_config(tiny_run).lr == tiny_run["lr"]
    assert model_config(tiny_run).d_mlp == tiny_run["d_mlp"]
    for build in (model_config, train_config):
        with pytest.raises(ConfigError, match=r"unknown run key\(s\) \['learning_rate'\]"):
            build({**tiny_run, "learning_rate": 1e-3})
