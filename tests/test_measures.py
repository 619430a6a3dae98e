"""Known answers for the progress measures (Nanda et al. 2023) over a stack of checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from alignlab import fourier
from alignlab.data import build_dataset
from alignlab.measures import (
    COLUMNS,
    PairSplit,
    final_key_frequencies,
    logit_measures,
    progress_measures,
)
from alignlab.models import FinalPositionTransformer, ModelConfig, final_position_loss, init_params
from alignlab.testing import rounding_tol

torch.set_num_threads(1)

SMALL = ModelConfig(p=17, d_model=16, n_heads=2, d_head=8, d_mlp=32)


def clock_logits(p: int, amplitudes: dict[int, float]) -> torch.Tensor:
    """L[a, b, c] = sum_k alpha_k cos(w_k (a + b - c)), as [p^2, p] in a-major pair order."""
    a, b, c = torch.meshgrid(*(torch.arange(p, dtype=torch.float64),) * 3, indexing="ij")
    logits = sum(
        amp * torch.cos(2 * math.pi * k * (a + b - c) / p) for k, amp in amplitudes.items()
    )
    return logits.reshape(p * p, p)


def split_loss(logits: torch.Tensor, split: PairSplit, train: bool) -> float:
    index, labels = (
        (split.train_index, split.train_labels) if train else (split.test_index, split.test_labels)
    )
    return final_position_loss(logits[index], labels).item()


def measure(values: dict, name: str, component: str = "") -> float:
    return values[(name, component)].item()


def test_clock_logits_restricted_equals_full_and_excluded_is_uniform():
    p = 23
    split = PairSplit.from_dataset(build_dataset(p, "add", 0.3, seed=0))
    logits = clock_logits(p, {3: 4.0, 7: 3.0})
    values = logit_measures(logits.unsqueeze(0), split, key_freqs=[3, 7])
    # Only key-frequency terms: restricting changes nothing.
    full_test = split_loss(logits, split, train=False)
    assert measure(values, "test_loss") == pytest.approx(full_test, rel=1e-12)
    assert measure(values, "restricted_loss") == pytest.approx(full_test, rel=1e-12)
    assert measure(values, "train_acc") == 1.0
    # Removing every key frequency leaves zero logits: the uniform loss log p.
    assert measure(values, "excluded_loss", "all") == pytest.approx(math.log(p), rel=1e-12)
    # Removing one leaves the other's term alone.
    only_7 = split_loss(clock_logits(p, {7: 3.0}), split, train=True)
    only_3 = split_loss(clock_logits(p, {3: 4.0}), split, train=True)
    assert measure(values, "excluded_loss", "k=3") == pytest.approx(only_7, rel=1e-12)
    assert measure(values, "excluded_loss", "k=7") == pytest.approx(only_3, rel=1e-12)
    # Restricting to frequency 3 only keeps just its term.
    restricted_3 = logit_measures(logits.unsqueeze(0), split, key_freqs=[3])
    only_3_test = split_loss(clock_logits(p, {3: 4.0}), split, train=False)
    assert measure(restricted_3, "restricted_loss") == pytest.approx(only_3_test, rel=1e-12)


def brute_force_losses(logits: torch.Tensor, split: PairSplit, key_freqs: list[int], p: int):
    """Restricted and excluded losses with the (a + b) projection built densely (small p)."""
    coeffs = fourier.sum_component_coefficients(logits)
    sums = fourier.sum_index(p)
    keep = fourier.sum_component_table(coeffs, fourier.component_indices(key_freqs, True))[sums]
    restricted = F.cross_entropy(keep[split.test_index], split.test_labels).item()
    excluded = {}
    for name, freqs in [("all", key_freqs)] + [(f"k={k}", [k]) for k in key_freqs]:
        drop = fourier.sum_component_table(coeffs, fourier.component_indices(freqs, False))[sums]
        rest = logits.double() - drop
        excluded[name] = F.cross_entropy(rest[split.train_index], split.train_labels).item()
    return restricted, excluded


@pytest.mark.parametrize("scale", [3.0, 2000.0])  # 2000: tables too wide for the exp trick
def test_logit_measures_equal_a_direct_computation(scale):
    p = 11
    split = PairSplit.from_dataset(build_dataset(p, "add", 0.4, seed=1))
    gen = torch.Generator().manual_seed(5)
    logits = scale * torch.randn(2, p * p, p, generator=gen, dtype=torch.float64)
    values = logit_measures(logits, split, key_freqs=[2, 5])
    for i in range(2):
        restricted, excluded = brute_force_losses(logits[i], split, [2, 5], p)
        assert values[("restricted_loss", "")][i].item() == pytest.approx(restricted, rel=1e-10)
        for name, expected in excluded.items():
            assert values[("excluded_loss", name)][i].item() == pytest.approx(expected, rel=1e-10)


def random_run(cfg: ModelConfig, seeds: list[int]) -> dict[str, torch.Tensor]:
    runs = [init_params(cfg, seed) for seed in seeds]
    return {name: torch.stack([run[name] for run in runs]) for name in runs[0]}


def expected_rows_per_step(cfg: ModelConfig, n_key: int) -> int:
    n_freqs = (cfg.p - 1) // 2
    # 4 loss/acc + restricted + excluded (all + each) + 2 gini + 2 spectra + n_key + sum_sq
    return 4 + 1 + (1 + n_key) + 2 + 2 * n_freqs + 1 + 1


def test_progress_measures_table_on_a_small_random_model():
    dataset = build_dataset(SMALL.p, "add", 0.3, seed=0)
    steps, stack = [0, 10, 20], random_run(SMALL, [0, 1, 2])
    table = progress_measures(steps, stack, SMALL, dataset, chunk=2)
    key = table.attrs["key_frequencies"]
    assert key == final_key_frequencies(steps, stack)
    assert list(table.columns) == COLUMNS
    assert not table.duplicated(["step", "measure", "component"]).any()
    assert len(table) == 3 * expected_rows_per_step(SMALL, len(key))
    assert (
        table.groupby(["measure", "component"])
        .step.apply(list)
        .map(sorted)
        .eq([steps] * table.groupby(["measure", "component"]).ngroups)
        .all()
    )
    assert set(table.measure) == {
        "train_loss",
        "test_loss",
        "train_acc",
        "test_acc",
        "restricted_loss",
        "excluded_loss",
        "gini_W_E",
        "gini_W_L",
        "fourier_norm_W_E",
        "fourier_norm_W_L",
        "n_key_freqs",
        "sum_sq_weights",
    }
    assert set(table[table.measure == "excluded_loss"].component) == {"all"} | {
        f"k={k}" for k in key
    }
    assert table.value.notna().all()


def test_progress_measures_agree_with_the_model_and_weights_directly():
    # The table's logits come from all pairs at once, the reference's from each split: different
    # batches, different kernels. In float64 (the model keeps the weights' dtype) that rounding
    # stays far below the tolerances whatever the CPU, and the argmax cannot flip.
    dataset = build_dataset(SMALL.p, "add", 0.3, seed=0)
    steps = [0, 10, 20]
    stack = {name: v.double() for name, v in random_run(SMALL, [0, 1, 2]).items()}
    logits_tol = rounding_tol(SMALL.d_mlp, depth=4, dtype=torch.float64)
    table = progress_measures(steps, stack, SMALL, dataset, chunk=2)
    value = table.set_index(["step", "measure", "component"]).value
    for i, step in enumerate(steps):
        params = {name: v[i] for name, v in stack.items()}
        model = FinalPositionTransformer(SMALL, params)
        for split, is_train in (("train", True), ("test", False)):
            a, b, c = dataset.split(is_train)
            with torch.no_grad():
                logits = model(a, b)
            loss = final_position_loss(logits, c).item()
            acc = (logits.argmax(-1) == c).double().mean().item()
            # cross-entropy moves by at most twice the largest change of a logit
            tol = 2 * logits_tol * logits.abs().max().item()
            assert value[(step, f"{split}_loss", "")] == pytest.approx(loss, abs=tol)
            assert value[(step, f"{split}_acc", "")] == pytest.approx(acc)
        sum_sq = sum((v.double() ** 2).sum().item() for v in params.values())
        assert value[(step, "sum_sq_weights", "")] == pytest.approx(sum_sq, rel=1e-12)
        spectrum = fourier.frequency_norms(
            fourier.component_norms(params["embed.W_E"][: SMALL.p], axis=0)
        )
        assert value[(step, "fourier_norm_W_E", "3")] == pytest.approx(spectrum[2].item())
        w_l = params["blocks.0.mlp.W_out"] @ params["unembed.W_U"]  # float64, as the library's
        gini_w_l = fourier.gini(fourier.component_norms(w_l, axis=1)).item()
        assert value[(step, "gini_W_L", "")] == pytest.approx(gini_w_l, rel=logits_tol)


def test_chunk_size_does_not_change_the_table():
    dataset = build_dataset(SMALL.p, "add", 0.3, seed=0)
    steps, stack = [0, 10, 20], random_run(SMALL, [3, 4, 5])
    one = progress_measures(steps, stack, SMALL, dataset, chunk=1)
    three = progress_measures(steps, stack, SMALL, dataset, chunk=3)
    assert one[["step", "measure", "component"]].equals(three[["step", "measure", "component"]])
    torch.testing.assert_close(torch.tensor(one.value.values), torch.tensor(three.value.values))


def test_same_checkpoints_twice_give_identical_tables():
    dataset = build_dataset(SMALL.p, "add", 0.3, seed=0)
    steps, stack = [0, 10], random_run(SMALL, [1, 2])
    first = progress_measures(steps, stack, SMALL, dataset)
    second = progress_measures(steps, stack, SMALL, dataset)
    assert first.equals(second)  # bit for bit, not merely close


def test_key_frequencies_come_from_the_final_checkpoints_w_l():
    steps, stack = [20, 0, 10], random_run(SMALL, [0, 1, 2])  # the final step is at index 0
    p, d_model = SMALL.p, SMALL.d_model
    w_u = torch.zeros(d_model, p)
    w_u[0] = torch.cos(2 * math.pi * 5 * torch.arange(p) / p)
    w_u[1] = torch.sin(2 * math.pi * 5 * torch.arange(p) / p)
    stack["unembed.W_U"][0] = w_u  # W_L = W_out @ W_U then only holds frequency 5
    assert final_key_frequencies(steps, stack) == [5]
    dataset = build_dataset(p, "add", 0.3, seed=0)
    table = progress_measures(steps, stack, SMALL, dataset, key_freq_threshold=0.5)
    n_key = table[table.measure == "n_key_freqs"].set_index("step").value
    assert n_key[20] == 1 and n_key[0] > 1  # a random W_L has no sparse spectrum
    assert set(table[table.measure == "excluded_loss"].component) == {"all", "k=5"}


def test_threshold_and_override_are_respected():
    dataset = build_dataset(SMALL.p, "add", 0.3, seed=0)
    steps, stack = [0, 1], random_run(SMALL, [0, 1])
    strict = progress_measures(steps, stack, SMALL, dataset, key_freq_threshold=1.0)
    assert (strict[strict.measure == "n_key_freqs"].value == 1).all()
    assert len(strict.attrs["key_frequencies"]) == 1
    forced = progress_measures(steps, stack, SMALL, dataset, key_freqs=[2, 6])
    assert forced.attrs["key_frequencies"] == [2, 6]
    assert set(forced[forced.measure == "excluded_loss"].component) == {"all", "k=2", "k=6"}


def test_non_addition_dataset_is_rejected():
    dataset = build_dataset(SMALL.p, "sub", 0.3, seed=0)
    with pytest.raises(ValueError, match="add"):
        progress_measures([0], random_run(SMALL, [0]), SMALL, dataset)


def test_bad_key_frequency_override_is_rejected():
    dataset = build_dataset(SMALL.p, "add", 0.3, seed=0)
    for bad in ([0], [9], [2, 2]):  # p = 17 has frequencies 1..8
        with pytest.raises(ValueError, match="key frequencies"):
            progress_measures([0], random_run(SMALL, [0]), SMALL, dataset, key_freqs=bad)
