"""Clock vs pizza measures with known answers (Zhong et al. 2023 definitions)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from alignlab.config import ConfigError, load_experiment
from alignlab.models import FinalPositionTransformer, ModelConfig, init_params
from alignlab.testing import assert_close_fp
from experiments.clock_pizza.measures import (
    correct_logits,
    distance_irrelevance,
    gradient_symmetricity,
    input_gradients,
    logits_from_embeddings,
    symmetricity_of_model,
)

EXPERIMENT = Path(__file__).resolve().parents[1]


def _model(
    rate: float, p: int = 11, seed: int = 0, dtype: torch.dtype = torch.float32
) -> FinalPositionTransformer:
    cfg = ModelConfig(p=p, d_model=16, n_heads=2, d_head=8, d_mlp=32, attn_rate=rate)
    params = init_params(cfg, seed)
    params["blocks.0.attn.W_Q"] *= 4  # sharper attention than at init, so rates differ
    return FinalPositionTransformer(cfg, {name: v.to(dtype) for name, v in params.items()})


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_logits_from_embeddings_match_the_model(rate):
    # Two different computations of one function: compared in float64, so that kernel-dependent
    # fp32 rounding cannot decide the result and a real difference stands out.
    model = _model(rate, dtype=torch.float64)
    a, b = (x.ravel() for x in torch.meshgrid(torch.arange(11), torch.arange(11), indexing="ij"))
    W_E = model.embed.W_E.detach()
    expected = model(a, b)
    got = logits_from_embeddings(model, W_E[a], W_E[b])
    assert got.dtype == torch.float64
    assert_close_fp(got, expected, n=32, depth=4, dtype=torch.float64, name="logits")


def test_uniform_attention_is_exactly_symmetric():
    # At a = 0 the logits depend on E_a + E_b only, so both gradients are equal.
    assert symmetricity_of_model(_model(0.0), n_samples=200, seed=0) == pytest.approx(1.0, abs=1e-6)


def test_softmax_attention_is_not_symmetric():
    assert symmetricity_of_model(_model(1.0), n_samples=200, seed=0) < 0.999


def test_symmetricity_of_hand_made_functions():
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(6, 5, generator=gen)
    e_a, e_b = torch.randn(50, 6, generator=gen), torch.randn(50, 6, generator=gen)
    c = torch.randint(0, 5, (50,), generator=gen)
    symmetric = input_gradients(lambda x, y: torch.sin((x + y) @ W), e_a, e_b, c)
    antisymmetric = input_gradients(lambda x, y: (x - y) @ W, e_a, e_b, c)
    assert gradient_symmetricity(*symmetric) == pytest.approx(1.0, abs=1e-9)
    assert gradient_symmetricity(*antisymmetric) == pytest.approx(-1.0, abs=1e-9)


def test_distance_irrelevance_known_answers():
    p = 13
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    rng = np.random.default_rng(0)
    by_distance = rng.normal(size=p)[(a - b) % p]  # depends only on d: within-group std 0
    by_a_only = rng.normal(size=p)[a]  # each d-group sees every a once: same std as overall
    assert distance_irrelevance(by_distance) == pytest.approx(0.0, abs=1e-12)
    assert distance_irrelevance(by_a_only) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="constant"):
        distance_irrelevance(np.ones((p, p)))


def test_correct_logits_pick_the_answer():
    # The table comes from one batch of all pairs, the reference from a batch of one: different
    # kernels, so in fp32 they differ by CPU-dependent rounding. In float64 that rounding is far
    # below the tolerance, while another class's logit would be far above it.
    model = _model(1.0, dtype=torch.float64)
    table = correct_logits(model)
    logits = model(torch.tensor([3]), torch.tensor([9])).detach()
    assert_close_fp(table[3, 9], logits[0, (3 + 9) % 11], n=32, depth=4, dtype=torch.float64)
    others = logits[0, torch.arange(11) != (3 + 9) % 11]
    assert (others - table[3, 9]).abs().min() > 1e-6  # the check can tell the classes apart


def test_bad_config_names_the_key(tmp_path):
    shutil.copytree(EXPERIMENT, tmp_path / "clock_pizza")
    config = tmp_path / "clock_pizza" / "config.yaml"
    config.write_text(config.read_text().replace("n_samples: 500", "n_samples: -5"))
    with pytest.raises(ConfigError, match="laptop.analysis.n_samples"):
        load_experiment(tmp_path / "clock_pizza", "laptop")
