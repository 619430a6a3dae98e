"""Circuit measures with known answers (experiments.circuits)."""

import math

import pytest
import torch

from alignlab.config import ConfigError, load_experiment
from alignlab.data import build_dataset
from alignlab.models import FinalPositionTransformer, ModelConfig, init_params
from alignlab.testing import assert_close_fp
from experiments.circuits import ablate, measure, spectra, summary

P = 13


def _grid(fn) -> torch.Tensor:
    a = torch.arange(P, dtype=torch.float64).view(P, 1)
    b = torch.arange(P, dtype=torch.float64).view(1, P)
    return fn(2 * math.pi * a / P, 2 * math.pi * b / P) + torch.zeros(P, P, dtype=torch.float64)


def test_cos_cos_neuron_is_fully_explained_by_its_frequency():
    k = 4
    grids = torch.stack(
        [
            _grid(lambda a, b: torch.cos(k * a) * torch.cos(k * b)),
            _grid(lambda a, b: 3 + torch.sin(k * a) + 0.5 * torch.cos(k * b)),  # linear terms
            _grid(lambda a, b: torch.cos(k * (a + b)) + 0.1 * torch.sin(2 * (a - b))),
        ]
    )
    explained = spectra.frequency_explained_2d(grids)
    assert explained.shape == (3, (P - 1) // 2)
    freq, frac = spectra.best_frequency(explained)
    assert freq.tolist() == [k, k, k]
    assert frac[0].item() == pytest.approx(1.0, abs=1e-12)
    assert frac[1].item() == pytest.approx(1.0, abs=1e-12)
    assert frac[2].item() == pytest.approx(1 / 1.01, abs=1e-12)  # 0.01 of the energy at k = 2
    assert explained[2, 1].item() == pytest.approx(0.01 / 1.01, abs=1e-12)


def test_cross_frequency_and_constant_grids_explain_nothing():
    grids = torch.stack(
        [
            _grid(lambda a, b: torch.cos(2 * a) * torch.cos(5 * b)),  # two frequencies
            _grid(lambda a, b: 7.0 + 0 * a),  # constant (a dead neuron)
        ]
    )
    explained = spectra.frequency_explained_2d(grids)
    assert explained[0].max().item() == pytest.approx(0.0, abs=1e-12)
    assert explained[1].abs().max().item() == 0.0
    # a constant float32 grid: FFT rounding must not read as structure
    constant = torch.full((2, P, P), 0.3, dtype=torch.float32)
    assert spectra.frequency_explained_2d(constant).abs().max().item() == 0.0


def test_fft_measure_matches_the_real_fourier_basis_projection():
    grids = torch.randn(5, P, P, dtype=torch.float64)
    explained = spectra.frequency_explained_2d(grids)
    centred = grids - grids.mean(dim=(-2, -1), keepdim=True)
    total = centred.square().sum(dim=(-2, -1))
    for k in (1, 3, 6):
        mask = ablate._mask_2d(P, [k], constant=False)
        proj = ablate.project_grid(grids.permute(1, 2, 0), mask)
        share = proj.square().sum(dim=(0, 1)) / total
        torch.testing.assert_close(explained[:, k - 1], share)


def test_one_dimensional_measure():
    x = 2 * math.pi * torch.arange(P, dtype=torch.float64) / P
    explained = spectra.frequency_explained_1d(torch.stack([torch.sin(3 * x) + 2, x * 0]))
    assert explained[0, 2].item() == pytest.approx(1.0)
    assert explained[1].abs().max().item() == 0.0


def test_w_l_from_three_frequencies_has_rank_six():
    freqs = [1, 4, 5]
    c = 2 * math.pi * torch.arange(P, dtype=torch.float64) / P
    waves = torch.stack([f(k * c) for k in freqs for f in (torch.cos, torch.sin)])  # [6, p]
    W_L = torch.randn(40, 6, dtype=torch.float64) @ waves + torch.randn(40, 1, dtype=torch.float64)
    svals = spectra.wl_singular_values(W_L)
    assert (svals > 1e-9 * svals[0]).sum().item() == 6
    assert spectra.top_share(svals, 6).item() == pytest.approx(1.0, abs=1e-12)
    assert spectra.top_share(svals, 3).item() < 0.9


def _logits(alpha: dict[int, float], extra=None) -> torch.Tensor:
    a, b, c = (
        (2 * math.pi * torch.arange(P, dtype=torch.float64) / P).view(*shape)
        for shape in ((P, 1, 1), (1, P, 1), (1, 1, P))
    )
    logits = sum(w * torch.cos(k * (a + b - c)) for k, w in alpha.items())
    logits = logits + 5 * torch.cos(2 * a) * torch.cos(3 * b)  # per-pair constant over c
    if extra is not None:
        logits = logits + extra(a, b, c)
    return logits


def test_cos_sum_share_is_one_for_the_clock_form_and_sums_over_frequencies():
    share = spectra.cos_sum_explained(_logits({2: 1.0, 5: 0.5}))
    assert share.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert share[1].item() == pytest.approx(0.8, abs=1e-12)  # 1 / (1 + 0.25)
    assert share[4].item() == pytest.approx(0.2, abs=1e-12)
    # a sin(w(a + b - c)) term is orthogonal to the cos form: half the variance unexplained
    share = spectra.cos_sum_explained(
        _logits({2: 1.0}, extra=lambda a, b, c: torch.sin(2 * (a + b - c)))
    )
    assert share.sum().item() == pytest.approx(0.5, abs=1e-12)


def test_logit_spectrum_sits_on_the_key_frequency_terms():
    spectrum = spectra.logit_spectrum(_logits({3: 1.0}))
    cos3, sin3 = 5, 6
    big = spectrum > 1e-9 * spectrum.max()
    assert set(map(tuple, torch.nonzero(big).tolist())) == {
        (cos3, cos3),
        (sin3, sin3),
        (cos3, sin3),
        (sin3, cos3),
    }


@pytest.fixture(scope="module")
def tiny():
    cfg = ModelConfig(p=P, d_model=16, n_heads=2, d_head=8, d_mlp=24)
    return cfg, init_params(cfg, seed=3), build_dataset(P, "add", 0.5, 0)


def test_internals_match_the_model_and_the_bridge(tiny):
    from alignlab.bridge import to_bridge, tokens

    # Three different computations of the same tensors: compared in float64 (all three keep the
    # weights' dtype), so that fp32 rounding, which depends on the CPU's kernels, cannot decide.
    cfg, params, _ = tiny
    params = {k: v.double() for k, v in params.items()}
    inner = spectra.internals({k: v[None] for k, v in params.items()}, cfg)
    a, b = torch.arange(P).repeat_interleave(P), torch.arange(P).repeat(P)
    with torch.no_grad():
        expected = FinalPositionTransformer(cfg, params)(a, b)
        _, cache = to_bridge(params, cfg).run_with_cache(tokens(a, b, P))
    f64 = {"n": cfg.d_mlp, "dtype": torch.float64}
    assert inner["logits"].dtype == torch.float64
    assert_close_fp(inner["logits"][0].reshape(P * P, P), expected, depth=4, name="logits", **f64)
    post = cache["blocks.0.mlp.hook_post"][:, -1].reshape(P, P, -1)
    assert_close_fp(inner["post"][0], post, depth=2, name="post", **f64)
    pattern = cache["blocks.0.attn.hook_pattern"][:, :, -1].reshape(P, P, cfg.n_heads, 3)
    assert_close_fp(inner["pattern"][0], pattern, depth=1, name="pattern", **f64)


def test_removing_a_frequency_the_neurons_lack_changes_nothing(tiny):
    cfg, params, _ = tiny
    post = spectra.internals({k: v[None] for k, v in params.items()}, cfg)["post"][0].double()
    only_two = ablate.project_grid(post, ablate._mask_2d(P, [2], constant=True))
    none = torch.tensor([], dtype=torch.long)
    fns = ablate.interventions(P, [2, 5], none, none)
    torch.testing.assert_close(fns[("remove_key_freq", "5")](only_two), only_two)
    torch.testing.assert_close(fns[("keep_only_key_freqs", "")](only_two), only_two)
    # removing frequency 2 leaves each neuron's constant only
    removed = fns[("remove_key_freq", "2")](only_two)
    torch.testing.assert_close(removed, only_two.mean(dim=(0, 1), keepdim=True).expand_as(removed))


def test_ablations_through_the_bridge(tiny):
    cfg, params, dataset = tiny
    frac = torch.zeros(cfg.d_mlp)
    frac[: cfg.d_mlp // 2] = 1.0  # half the neurons "explained"
    table = ablate.ablation_table("r", 0, params, cfg, dataset, [2, 5], frac, 0.85)
    assert set(table.split) == {"train", "test"}
    assert (table[table.intervention == "none"].delta_loss == 0).all()
    changed = table[table.intervention == "remove_all_key_freqs"].delta_loss.abs()
    assert (changed > 0).all()
    # Logits that do not read the neurons (W_out = 0): no intervention on them changes anything.
    deaf = dict(params) | {"blocks.0.mlp.W_out": torch.zeros_like(params["blocks.0.mlp.W_out"])}
    table = ablate.ablation_table("r", 0, deaf, cfg, dataset, [2, 5], frac, 0.85)
    assert table.delta_loss.abs().max() < 1e-12


def test_config_is_validated_and_names_the_key(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]  # the experiment folder
    block = load_experiment(root, "smoke")
    assert block["defaults"]["explained_threshold"] == 0.85
    bad = tmp_path / "circuits"
    bad.mkdir()
    (bad / "config.schema.yaml").write_text((root / "config.schema.yaml").read_text())
    text = (
        (root / "config.yaml")
        .read_text()
        .replace("explained_threshold: 0.85", "explained_threshold: 1.5")
    )
    (bad / "config.yaml").write_text(text)
    with pytest.raises(ConfigError, match="explained_threshold"):
        load_experiment(bad, "laptop")


ANALYSIS = {
    "canonical_seed": 0,
    "explained_threshold": 0.85,
    "random_init_seeds": [7],
    "checkpoint_stride": 1,
    "chunk": 1,
}


def _fake_run(tmp_path, cfg, dataset):
    """A two-checkpoint run seed0-abc with its key frequencies, the dataset and a phases table,
    as the grokking rules leave them; returns the run folder."""
    import json

    import pandas as pd

    from alignlab.checkpoints import save_weights, step_path
    from alignlab.data import save_dataset

    run_dir = tmp_path / "seed0-abc"
    for step in (0, 10):
        save_weights(
            init_params(cfg, step), step_path(run_dir / "checkpoints", step), step, cfg.to_dict()
        )
    pd.DataFrame({"step": [0, 10]}).to_parquet(run_dir / "train_log.parquet")  # the run's steps
    (run_dir / "key_frequencies.json").write_text(json.dumps({"key_frequencies": [2, 5]}))
    save_dataset(dataset, tmp_path / "data.parquet")
    pd.DataFrame(
        {"run_id": ["seed0-abc"], "phase": ["memorization"], "start": [0.0], "end": [5.0]}
    ).to_parquet(tmp_path / "phases.parquet")
    return run_dir


def _run_rules(run_dir, tmp_path, out: dict) -> None:
    """The circuits rules' functions in DAG order: measures, ablations, summary."""
    data, key_freqs = tmp_path / "data.parquet", run_dir / "key_frequencies.json"
    measure.measure_circuits(
        run_dir, data, key_freqs, ANALYSIS, out["measures"], out["spectrum"], out["runs"]
    )
    ablate.ablate_circuits(run_dir, data, key_freqs, ANALYSIS, out["ablations"])
    summary.summarize(
        out["measures"],
        out["ablations"],
        out["runs"],
        0.85,
        out["markers"],
        tmp_path / "numbers.json",
    )


def test_rule_functions_end_to_end(tmp_path, tiny):
    """measures -> ablations -> summary -> figures on a fake two-checkpoint run: tidy tables."""
    import json

    import pandas as pd

    from experiments.circuits.figures import circuits_figures

    cfg, _, dataset = tiny
    run_dir = _fake_run(tmp_path, cfg, dataset)
    out = {
        name: tmp_path / f"{name}.parquet"
        for name in ("measures", "spectrum", "runs", "ablations", "markers")
    }
    _run_rules(run_dir, tmp_path, out)
    measures, runs = pd.read_parquet(out["measures"]), pd.read_parquet(out["runs"])
    assert list(measures.columns) == measure.COLUMNS
    assert not measures.duplicated(["run_id", "step", "measure", "component"]).any()
    assert set(runs.model) == {"trained", "random_init"} and "seed" in runs
    assert set(measures.run_id) == set(runs.run_id)
    trained = measures[(measures.run_id == "seed0-abc") & (measures.measure == "W_L_top_share")]
    assert sorted(trained.step) == [0, 10]  # over training
    assert {"test_loss", "restricted_loss", "gini_W_E"} <= set(measures.measure)  # progress
    markers = pd.read_parquet(out["markers"])
    assert set(markers.run_id) == set(runs.run_id)
    numbers = json.loads((tmp_path / "numbers.json").read_text())
    assert numbers["n_key_freqs"] == 2 and numbers["n_directions"] == 4
    circuits_figures(
        out["measures"],
        out["spectrum"],
        out["ablations"],
        out["runs"],
        tmp_path / "phases.parquet",
        tmp_path / "figs",
        threshold=0.85,
    )
    for name in ("neurons", "heads", "logits", "ablations", "controls"):
        assert (tmp_path / "figs" / f"{name}.png").stat().st_size > 1000


def test_shares_by_seed_read_as_percentages_never_rounded_up_to_all():
    assert summary._percent(0.812) == "81.2%"
    assert summary._percent(0.99996) == "99.996%"  # not "100.0%": a share below 1 is not all
    assert summary._percent(1.0) == "100.0%"
    assert summary._percent(0.0) == "0.0%"
