"""Conservative ensembles (Coste et al. 2023): aggregation rules, best-of-n under an ensemble,
the config block and the ensemble's summary, on small known arrays."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignlab.config import ConfigError, load_yaml, validate
from experiments.reward import bon
from experiments.reward.markers import ensemble_marker_values
from experiments.reward.numbers import ensemble_table
from experiments.reward.runs import expand_ensemble, expand_runs
from experiments.reward.summary import ensemble
from experiments.reward.train import POOL_FORMAT, _save_arrays, save_scores

EXP = Path(__file__).resolve().parents[1]  # the experiment folder


def test_aggregate_rules_on_known_scores():
    z = np.array([[1.0, 5.0, 2.0], [3.0, 1.0, 2.0]])  # 2 members x 3 samples
    np.testing.assert_allclose(bon.aggregate(z, "mean", 0.5), [2.0, 3.0, 2.0])
    np.testing.assert_allclose(bon.aggregate(z, "worst_case", 0.5), [1.0, 1.0, 2.0])
    # population variance over members: [1, 4, 0]
    np.testing.assert_allclose(bon.aggregate(z, "mean_minus_var", 0.5), [1.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="single"):
        bon.aggregate(z, "single", 1.0)


def test_worst_case_is_at_most_mean_and_var_penalty_only_lowers():
    z = bon.standardize(np.random.default_rng(0).standard_normal((5, 400)))
    mean = bon.aggregate(z, "mean", 1.0)
    assert (bon.aggregate(z, "worst_case", 1.0) <= mean + 1e-12).all()
    assert (bon.aggregate(z, "mean_minus_var", 2.0) <= mean + 1e-12).all()
    np.testing.assert_allclose(bon.aggregate(z, "mean_minus_var", 0.0), mean)


def test_standardize_keeps_each_members_best_of_n():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((3, 60)) * [[1.0], [7.0], [0.1]] + [[0.0], [5.0], [-2.0]]
    z = bon.standardize(scores)
    np.testing.assert_allclose(z.mean(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(1), 1.0)
    gold, pid, ns = rng.standard_normal(60), np.repeat([0, 1], 30), [1, 4, 30]
    for raw, std in zip(scores, z, strict=True):  # a monotone map: the same selection
        np.testing.assert_allclose(
            bon.bon_curves(raw, gold, pid, ns)["gold"], bon.bon_curves(std, gold, pid, ns)["gold"]
        )


def test_ensemble_best_of_n_on_a_known_pool():
    """Member A loves sample 3 (gold -30: an exploit), member B ranks it last: the worst case
    never picks it, so best-of-all gold is the gold of the worst case's top sample."""
    gold = np.array([0.0, 1.0, 2.0, -30.0])
    a = np.array([0.0, 1.0, 2.0, 9.0])
    b = np.array([0.5, 1.0, 2.0, -1.0])
    pid, ns = np.zeros(4, int), [1, 2, 4]
    out = bon.ensemble_curves(np.stack([a, b]), gold, pid, ns, lam=1.0)
    assert set(out) == set(bon.ENSEMBLE_RULES)
    z = bon.standardize(np.stack([a, b]))
    for rule in ("mean", "worst_case", "mean_minus_var"):
        proxy = bon.aggregate(z, rule, 1.0)
        expected = [bon.brute_force_bon(proxy, gold, n) for n in ns]
        np.testing.assert_allclose(out[rule]["gold"][0], expected, rtol=1e-12)
    assert out["worst_case"]["gold"][0, -1] == pytest.approx(2.0)  # sample 2: min(z) is largest
    # single: the mean of the two members' own curves; member A's best of 4 is the exploit
    single = np.mean([[bon.brute_force_bon(m, gold, n) for n in ns] for m in (a, b)], axis=0)
    np.testing.assert_allclose(out["single"]["gold"][0], single, rtol=1e-12)
    assert out["single"]["gold"][0, -1] == pytest.approx((-30.0 + 2.0) / 2)
    for rule in bon.ENSEMBLE_RULES:  # n = 1 is the base sampler: mean gold
        assert out[rule]["gold"][0, 0] == pytest.approx(gold.mean())


def _block():
    return copy.deepcopy(load_yaml(EXP / "config.yaml")["laptop"])


def test_expand_ensemble_members_share_pairs_and_differ_in_init():
    block = _block()
    block["ensemble"] = {
        "run": {"d_model": 4, "label": "flip", "flip_rate": 0.25},
        "members": [10, 11, 12],
        "data_seeds": [0, 1],
        "lambda": 1.0,
    }
    runs, ensembles = expand_ensemble(block)
    assert sorted(ensembles) == [0, 1] and len(runs) == 6
    for data_seed, rids in ensembles.items():
        members = [runs[r] for r in rids]
        assert {m["data_seed"] for m in members} == {data_seed}
        assert sorted(m["seed"] for m in members) == [10, 11, 12]
        assert all(m["label"] == "flip" and m["flip_rate"] == 0.25 for m in members)
        assert all(m["d_model"] == 4 and not m["oracle"] for m in members)
    sweep_runs, _ = expand_runs(block)
    assert not set(runs) & set(sweep_runs)  # never the same run as a sweep's


def test_rm_sweep_may_have_its_own_seeds():
    block = _block()
    block["seeds"] = [0, 1]
    block["sweeps"] = {
        "rm_size": {"d_model": [4], "seeds": [0, 1, 2, 3]},
        "data_size": {"n_pairs": [200]},
    }
    _, cells = expand_runs(block)
    assert len(cells["rm_size:4"]) == 4 and len(cells["data_size:200"]) == 2


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (("ensemble", "lamda"), 1.0, r"unknown key laptop\.ensemble\.lamda"),
        (("ensemble", "members"), [3], r"laptop\.ensemble\.members"),
        (("ensemble", "lambda"), -1.0, r"laptop\.ensemble\.lambda"),
        (("ensemble", "run", "flip_rate"), 1.5, r"laptop\.ensemble\.run\.flip_rate"),
        (("ensemble", "run", "n_members"), 4, r"unknown key laptop\.ensemble\.run\.n_members"),
    ],
)
def test_schema_rejects_a_bad_ensemble_key_naming_it(path, value, key):
    config = load_yaml(EXP / "config.yaml")
    schema = load_yaml(EXP / "config.schema.yaml")
    node = config["laptop"]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=key):
        validate(config, schema)


def test_schema_requires_the_ensemble_block():
    config = load_yaml(EXP / "config.yaml")
    del config["smoke"]["ensemble"]
    with pytest.raises(ConfigError, match="key smoke: 'ensemble' is a required property"):
        validate(config, load_yaml(EXP / "config.schema.yaml"))


def test_ensemble_summary_markers_and_table(tmp_path):
    """Two ensembles of two members on a pool where one member always loves an exploit: the
    single member's gold falls at large n, the worst case's does not."""
    rng = np.random.default_rng(0)
    n_prompts, size = 4, 64
    pid = np.repeat(np.arange(n_prompts), size)
    gold = rng.standard_normal(n_prompts * size)
    exploit = np.zeros_like(gold, dtype=bool)
    exploit[::16] = True  # 4 exploits per prompt, which gold punishes
    gold[exploit] = -20.0
    pool = tmp_path / "pool.safetensors"
    _save_arrays({"gold": gold, "prompt_id": pid}, pool, POOL_FORMAT, {})
    ensembles, paths, ids = {}, [], []
    for data_seed in (0, 1):
        for k in range(2):
            noise = rng.standard_normal(len(gold)) * 0.3
            proxy = gold + noise
            proxy[exploit] = 5.0 if k == 0 else -5.0  # member 0 loves it, member 1 hates it
            rid = f"m{data_seed}{k}"
            save_scores(proxy, tmp_path / f"{rid}.safetensors", {})
            paths.append(tmp_path / f"{rid}.safetensors")
            ids.append(rid)
            ensembles.setdefault(data_seed, []).append(rid)
    spec = {"run": {}, "members": [0, 1], "data_seeds": [0, 1], "lambda": 1.0}
    analysis = {"n_max": 64, "per_octave": 1, "n_boot": 5, "boot_seed": 0, "z_threshold": 2.0}
    curves, fits = tmp_path / "curves.parquet", tmp_path / "fits.parquet"
    ensemble(pool, paths, ids, ensembles, spec, analysis, curves, fits)
    fits = pd.read_parquet(fits).set_index("rule")
    assert list(fits.index) == list(bon.ENSEMBLE_RULES)
    assert fits.loc["single", "cf_drop"] > 1.0 and fits.loc["single", "cf_z"] > 2
    assert fits.loc["worst_case", "cf_drop"] < 0.1 * fits.loc["single", "cf_drop"]
    assert (fits.n_ensembles == 2).all() and (fits.n_members == 2).all()
    table = pd.read_parquet(curves)
    assert set(table.rule) == set(bon.ENSEMBLE_RULES)
    assert np.isfinite(table.gold_se).all()
    values = ensemble_marker_values(fits.reset_index(), ids, ["null-0"]).pivot(
        index="run_id", columns="marker", values="value"
    )
    assert sorted(values.index) == sorted([*ids, "null-0"])
    frac = (
        max(fits.loc["worst_case", "cf_drop"], fits.loc["mean_minus_var", "cf_drop"])
        / fits.loc["single", "cf_drop"]
    )
    assert values.loc[ids, "ens_conservative_drop_frac"].tolist() == pytest.approx([frac] * 4)
    # the null: the single member's drop on one half of the prompts over the other half's
    null = fits.loc["single", "half_a_cf_drop"] / fits.loc["single", "half_b_cf_drop"]
    assert values.loc["null-0", "ens_conservative_drop_frac"] == pytest.approx(null, nan_ok=True)
    tex = ensemble_table(fits.reset_index())
    assert tex.count("\\\\") == 1 + len(bon.ENSEMBLE_RULES) and "worst case" in tex


def test_conservative_fraction_needs_a_single_member_that_falls():
    """No significant fall of the single member: nothing to remove, the fraction is NaN."""
    rules = list(bon.ENSEMBLE_RULES)
    fits = pd.DataFrame(
        {
            "rule": rules,
            "cf_drop": [0.04, -0.04, -0.06, -0.02],
            "cf_z": [0.3, -0.4, -0.3, -0.2],
            "cf_peak": [4.9, 6.9, 6.3, 6.7],
            "half_a_cf_drop": [0.1, 0.0, 0.0, 0.0],
            "half_b_cf_drop": [0.2, 0.0, 0.0, 0.0],
        }
    )
    values = ensemble_marker_values(fits, ["m0"], ["null-0"], z_threshold=2.0)
    frac = values[values.marker == "ens_conservative_drop_frac"].set_index("run_id").value
    assert np.isnan(frac["m0"]) and np.isnan(frac["null-0"])
    fits.loc[0, "cf_z"] = 2.5  # the same drops, now significant: -0.02 / 0.04 and 0.1 / 0.2
    values = ensemble_marker_values(fits, ["m0"], ["null-0"], z_threshold=2.0)
    frac = values[values.marker == "ens_conservative_drop_frac"].set_index("run_id").value
    assert frac["m0"] == pytest.approx(-0.5) and frac["null-0"] == pytest.approx(0.5)
