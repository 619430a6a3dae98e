"""The reward experiment's config: its scales expand into runs, bad keys are named, and the laptop
environment makes the star's excess rare but reachable by best-of-n."""

from __future__ import annotations

import pytest

from alignlab.config import ConfigError, load_experiment, load_yaml, validate
from alignlab.preference.env import Env, EnvConfig, make_pool
from experiments.reward.runs import expand_runs


def test_laptop_star_excess_is_rare_but_reachable():
    """The mechanism's numbers: a star used beyond its limit in a few % of base samples, so a
    pool of 10,000 per prompt holds hundreds and best-of-128 meets one with probability > 90%."""
    block = load_experiment("experiments/reward", "laptop")
    env = Env(EnvConfig.from_dict(block["env"]))
    rate = (make_pool(env, 8, 4000, seed=100)["star_excess"] > 0).mean()  # a development pool
    assert 0.015 < rate < 0.04
    assert 1 - (1 - rate) ** 128 > 0.9


def test_config_scales_and_unknown_key():
    for scale in ("smoke", "laptop", "paper"):
        runs, cells = expand_runs(load_experiment("experiments/reward", scale))
        assert "oracle:0" in cells and all(len(r) for r in cells.values())
    config = load_yaml("experiments/reward/config.yaml")
    schema = load_yaml("experiments/reward/config.schema.yaml")
    config["laptop"]["defaults"]["d_modle"] = 8
    with pytest.raises(ConfigError, match="d_modle"):
        validate(config, schema)
    config = load_yaml("experiments/reward/config.yaml")
    config["laptop"]["env"]["repeat_penalty"] = -1
    with pytest.raises(ConfigError, match="repeat_penalty"):
        validate(config, schema)
