"""The reward experiment's config: its scales expand into runs, bad keys are named, and the laptop
environment makes the star's excess rare but reachable by best-of-n."""

from __future__ import annotations

import pytest

from alignlab.config import ConfigError, load_experiment, load_yaml, validate
from alignlab.preference.env import Env, EnvConfig, make_pool
from experiments.reward.runs import expand_ensemble, expand_runs, train_groups


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


def test_laptop_runs_train_in_groups_that_differ_only_in_their_seeds():
    """The sweeps' 21 trained runs in 7 groups of 3 seeds (the run both sweeps share trained
    once), the 12 members in their 3 ensembles; the oracle trains nothing."""
    block = load_experiment("experiments/reward", "laptop")
    runs, members = expand_runs(block)[0], expand_ensemble(block)[0]
    sweep, ensembles = train_groups(runs, ("seed", "data_seed")), train_groups(members, ("seed",))
    assert sorted(map(len, sweep.values())) == [3] * 7
    assert sorted(map(len, ensembles.values())) == [4] * 3
    grouped = [rid for ids in [*sweep.values(), *ensembles.values()] for rid in ids]
    assert sorted(grouped) == sorted(rid for rid in {**runs, **members} if "oracle" not in rid)
    for ids, vary in [*((i, ("seed", "data_seed")) for i in sweep.values()),
                      *((i, ("seed",)) for i in ensembles.values())]:  # fmt: skip
        pool = {**runs, **members}
        rest = [{k: v for k, v in pool[rid].items() if k not in vary} for rid in ids]
        assert all(r == rest[0] for r in rest)  # the same run but for its seeds
        assert len({pool[rid]["seed"] for rid in ids}) == len(ids)
    for ids in ensembles.values():
        assert len({members[rid]["data_seed"] for rid in ids}) == 1  # one ensemble, one pairs file
