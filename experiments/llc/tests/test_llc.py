"""LLC estimation with known answers, the example MLP and its checkpoints, the config."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from alignlab.checkpoints import list_checkpoints, load_weights
from alignlab.config import ConfigError, load_experiment
from experiments.llc.estimate import (
    ChainFailure,
    SGLDConfig,
    _load_model,
    _PairInputs,
    default_n_beta,
    estimate_llc,
    final_position_token_loss,
    llc_from_trace,
    select_checkpoints,
)
from experiments.llc.mlp import make_dataset, mlp_schedule, train_mlp

EXPERIMENT = Path(__file__).resolve().parents[1]


def test_estimate_uses_the_trace_after_burn_in():
    sgld = SGLDConfig(lr=1e-3, localization=1.0, num_burnin_steps=2, num_draws=3)
    trace = np.array([[9.0, 9.0, 1.5, 1.5, 1.5], [9.0, 9.0, 1.5, 1.5, 1.5]])
    est = llc_from_trace(trace, init_loss=1.0, n_beta=10.0, sgld=sgld)
    assert est.llc == pytest.approx(5.0)  # 10 * (1.5 - 1.0); burn-in (9.0) left out
    assert est.chains_agree


def test_a_nan_trace_is_an_error_and_disagreement_is_flagged():
    sgld = SGLDConfig(lr=1e-3, localization=1.0, num_burnin_steps=1, num_draws=2, chain_atol=0)
    with pytest.raises(ChainFailure, match=r"chain\(s\) \[1\]"):
        llc_from_trace(np.array([[1.0, 1.1, 1.1], [1.0, np.nan, np.nan]]), 1.0, 10.0, sgld)
    split = llc_from_trace(np.array([[1.0, 2.0, 2.0], [1.0, 1.1, 1.1]]), 1.0, 10.0, sgld)
    assert not split.chains_agree


def test_n_beta_default():
    assert default_n_beta(1000) == pytest.approx(1000 / math.log(1000))


def test_loss_is_copied_into_every_column():
    model = _PairInputs(lambda a, b: torch.stack([a, b, a + b], dim=1).float())
    ids = torch.tensor([[0, 1, 2], [2, 2, 0]])
    loss = final_position_token_loss(model, ids)
    assert loss.shape == (2, 2)
    torch.testing.assert_close(loss[:, 0], loss[:, 1])


class _Bias(nn.Module):
    """logits = theta for every input: a regular model with k - 1 identifiable directions
    (adding a constant to every logit changes nothing), so its LLC at the optimum is (k - 1) / 2."""

    def __init__(self, theta: torch.Tensor):
        super().__init__()
        self.theta = nn.Parameter(theta.clone())

    def forward(self, a, b):
        return self.theta.expand(len(a), -1)


def _bias_llc(k: int, seed_offset: int = 0) -> tuple[float, object]:
    n = 1000
    c = torch.arange(n) % k  # uniform labels: the optimum is theta = 0
    zeros = torch.zeros(n, dtype=torch.long)
    sgld = SGLDConfig(
        lr=3e-4,
        localization=1.0,
        n_beta=float(n),
        num_chains=2,
        num_burnin_steps=100,
        num_draws=300,
        batch_size=n,
        chain_rtol=0.25,
        chain_atol=0.0,
    )
    est = estimate_llc(_Bias(torch.zeros(k)), zeros, zeros, c, sgld, seed_offset=seed_offset)
    return est.llc, est


def test_the_seed_offset_draws_fresh_sgld_noise_and_the_same_offset_repeats_it():
    """A frozen model's LLC curve moves by the estimator's noise only if each checkpoint draws
    its own chains; the same offset must give the same estimate (a rerun repeats it)."""
    first, again, other = (_bias_llc(5, offset)[0] for offset in (0, 0, 100))
    assert first == again
    assert other != first and other == pytest.approx(first, rel=0.2)


def test_llc_of_a_regular_model_is_half_its_dimension():
    small, est_small = _bias_llc(5)
    large, est_large = _bias_llc(9)
    assert np.isfinite(est_small.trace).all() and est_small.chains_agree and est_large.chains_agree
    assert small == pytest.approx(2.0, rel=0.2)  # (5 - 1) / 2
    assert large == pytest.approx(4.0, rel=0.2)  # (9 - 1) / 2
    assert large > small


def test_mlp_schedule():
    assert mlp_schedule(1000, 400) == [0, 400, 800, 1000]
    assert mlp_schedule(1000, 500, log_count=3, log_start=10) == [0, 10, 100, 500, 1000]


def test_select_checkpoints_keeps_the_last():
    found = [(s, Path(f"{s}")) for s in (0, 50, 100, 150)]
    assert [s for s, _ in select_checkpoints(found, 100)] == [0, 100, 150]
    assert select_checkpoints(found, None) == found


def test_train_mlp_writes_loadable_checkpoints(tmp_path):
    run = {
        "p": 7,
        "frac_train": 0.5,
        "data_seed": 0,
        "seed": 0,
        "steps": 20,
        "embed_dim": 4,
        "hidden": 8,
        "lr": 5e-3,
        "weight_decay": 2e-4,
        "batch_size": 8,
        "checkpoint_every": 10,
    }
    make_dataset(run, tmp_path / "data.parquet")
    log = train_mlp(run, tmp_path / "data.parquet", tmp_path / "run")
    assert list(log.step) == [0, 10, 20]
    found = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [s for s, _ in found] == [0, 10, 20]
    model = _load_model(found[-1][1])
    params, step, _ = load_weights(found[-1][1])
    assert step == 20
    torch.testing.assert_close(model.state_dict()["linear2.weight"], params["linear2.weight"])
    # A second call resumes at the last step and trains nothing more: same weights.
    train_mlp(run, tmp_path / "data.parquet", tmp_path / "run")
    again, _, _ = load_weights(list_checkpoints(tmp_path / "run" / "checkpoints")[-1][1])
    torch.testing.assert_close(again["linear2.weight"], params["linear2.weight"])


def test_bad_config_names_the_key(tmp_path):
    shutil.copytree(EXPERIMENT, tmp_path / "llc")
    config = tmp_path / "llc" / "config.yaml"
    config.write_text(config.read_text().replace("num_chains: 4", "num_chains: 1", 1))
    with pytest.raises(ConfigError, match="paper.mlp_sgld.num_chains"):
        load_experiment(tmp_path / "llc", "paper")
