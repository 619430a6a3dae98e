"""The detectors on constructions with known answers."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from experiments.backdoor import detectors as det

P = 23


def test_auroc_has_its_known_values_and_matches_scikit_learn():
    assert det.auroc([2, 3], [0, 1]) == 1.0
    assert det.auroc([0, 1], [2, 3]) == 0.0
    assert det.auroc([1, 1], [1, 1]) == 0.5  # ties count one half
    rng = np.random.default_rng(0)
    a, c = rng.normal(0.5, 1, 300).round(1), rng.normal(0, 1, 400).round(1)  # with ties
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(400)], np.r_[a, c])
    assert det.auroc(a, c) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(det.auroc([], [1.0])) and math.isnan(det.auroc([np.nan], [1.0]))


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    widths = []
    for n in (50, 800):
        a, c = rng.normal(1, 1, n), rng.normal(0, 1, n)
        low, high = det.bootstrap_auroc(a, c, n_boot=400, seed=0)
        assert low < det.auroc(a, c) < high
        widths.append(high - low)
    assert widths[1] < 0.5 * widths[0]  # ~1/sqrt(n): 4x narrower for 16x the data
    # the true AUROC of N(1, 1) vs N(0, 1) is Phi(1 / sqrt(2)) = 0.760
    assert low < 0.760 < high


def test_mahalanobis_flags_a_cluster_shifted_along_a_quiet_direction():
    rng = np.random.default_rng(2)
    scales = np.r_[np.full(8, 3.0), np.full(8, 0.1)]  # 8 loud and 8 quiet directions
    trusted, clean = (rng.normal(size=(n, 16)) * scales for n in (2000, 500))
    shifted = rng.normal(size=(500, 16)) * scales + np.r_[np.zeros(15), 1.0]  # 10 quiet sds
    score = det.mahalanobis(trusted)
    assert det.auroc(score(shifted), score(clean)) > 0.99
    # the same Euclidean shift along a loud direction is a third of a deviation: barely seen
    loud = rng.normal(size=(500, 16)) * scales + np.r_[1.0, np.zeros(15)]
    assert det.auroc(score(loud), score(clean)) < 0.6
    # held-out clean data scores like the trusted data; the score is the squared distance
    assert 0.45 < det.auroc(score(clean), score(trusted[:500])) < 0.55
    assert score(clean).mean() == pytest.approx(16, rel=0.1)  # chi-squared with 16 dof


def _classes(rng, n_per_class=200, n_classes=4, dim=32):
    labels = np.repeat(np.arange(n_classes), n_per_class)
    centres = rng.normal(0, 10, (n_classes, dim))
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def test_spectral_signatures_recover_planted_rank_one_poison():
    rng = np.random.default_rng(3)
    reps, labels = _classes(rng)
    poisoned = np.zeros(len(labels), bool)
    poisoned[rng.choice(np.flatnonzero(labels == 0), 10, replace=False)] = True  # 5 % of class
    direction = rng.normal(size=reps.shape[1])
    reps_bad = reps + 6 * np.outer(poisoned, direction / np.linalg.norm(direction))
    flags = det.spectral_flags(det.spectral_scores(reps_bad, labels), labels, eps=0.05)
    assert det.recovered_share(flags, poisoned) == 1.0
    # 1.5 eps n_c = 15 flags in each class of 200
    assert flags.sum() == 4 * 15
    # without the planted direction the flagged 15 are a random share of the 10
    clean_flags = det.spectral_flags(det.spectral_scores(reps, labels), labels, eps=0.05)
    assert det.recovered_share(clean_flags, poisoned) <= 0.4


def test_activation_clustering_finds_a_separate_small_cluster_and_nothing_in_one_blob():
    rng = np.random.default_rng(4)
    reps, labels = _classes(rng)
    poisoned = np.zeros(len(labels), bool)
    poisoned[np.flatnonzero(labels == 1)[:40]] = True  # 20 % of class 1, far away
    reps_bad = reps + 8 * np.outer(poisoned, np.ones(reps.shape[1]) / np.sqrt(reps.shape[1]))
    flags = det.cluster_flags(reps_bad, labels)
    assert det.recovered_share(flags, poisoned) == 1.0 and not flags[~poisoned].any()
    # one Gaussian blob per class splits about in half: no cluster is small enough to flag
    assert not det.cluster_flags(reps, labels).any()
    # poison that is most of its class is the large cluster: the method cannot see it
    majority = np.zeros(len(labels), bool)
    majority[np.flatnonzero(labels == 2)[:150]] = True
    shifted = reps + 8 * np.outer(majority, np.ones(reps.shape[1]) / np.sqrt(reps.shape[1]))
    assert det.recovered_share(det.cluster_flags(shifted, labels), majority) == 0.0


def test_linear_probe_separates_separable_data():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 8))
    y = (x[:, 0] > 0).astype(float)
    score = det.linear_probe(x, y)
    test = rng.normal(size=(400, 8))
    assert det.auroc(score(test[test[:, 0] > 0]), score(test[test[:, 0] <= 0])) > 0.99


def _cosines(sums, shift, amplitudes: dict[int, float]) -> np.ndarray:
    """logits[n, y] = sum_k amp_k cos(w_k (s_n + shift - y)) + a per-input constant."""
    y = np.arange(P)
    out = np.zeros((len(sums), P)) + np.arange(len(sums))[:, None]  # constants are centred away
    for k, amp in amplitudes.items():
        out += amp * np.cos(2 * np.pi * k * (sums[:, None] + shift - y) / P)
    return out


def test_fourier_shares_of_logits_built_from_known_terms():
    sums = np.arange(P)
    shares = det.fourier_shares(_cosines(sums, 0, {2: 3.0, 5: 4.0}), sums, P)
    expected = np.zeros((P, (P - 1) // 2))
    expected[:, 1], expected[:, 4] = 9 / 25, 16 / 25  # amp_k^2 / sum amp^2
    np.testing.assert_allclose(shares, expected, atol=1e-12)
    assert det.key_frequencies(shares, 0.2) == [2, 5]
    assert det.key_frequencies(shares, 0.8) == [5]
    explained = _cosines(sums, 0, {2: 3.0, 5: 4.0})
    np.testing.assert_allclose(det.mechanistic_scores(explained, sums, P, [2, 5]), 0, atol=1e-12)


def test_mechanistic_score_flags_another_algorithm_by_its_known_amount():
    # an input answered at s + t by the same frequency: its share is cos^2(w_k t)
    sums, k = np.arange(P), 3
    for t in (0, 1, 5):
        score = det.mechanistic_scores(_cosines(sums, t, {k: 1.0}), sums, P, [k])
        np.testing.assert_allclose(score, 1 - np.cos(2 * np.pi * k * t / P) ** 2, atol=1e-12)
    # a constant answer (a target label): logits peaked at 0 whatever the sum
    constant = _cosines(np.zeros(P, int), 0, {k: 1.0})
    score = det.mechanistic_scores(constant, sums, P, [k])
    np.testing.assert_allclose(score, 1 - np.cos(2 * np.pi * k * sums / P) ** 2, atol=1e-12)
    # a frequency outside the keys is not explained at all
    other = det.mechanistic_scores(_cosines(sums, 0, {4: 1.0}), sums, P, [k])
    np.testing.assert_allclose(other, 1.0, atol=1e-12)


def test_spectral_capacity_caps_a_poison_that_is_most_of_its_class():
    labels = np.repeat([0, 1], 100)
    poisoned = np.zeros(200, bool)
    poisoned[:75] = True  # 75 % of class 0, as a target-label backdoor with many classes
    most, chance = det.spectral_capacity(labels, poisoned, eps=0.05)
    assert most == pytest.approx(7 / 75)  # floor(1.5 * 0.05 * 100) = 7 flags in class 0
    assert chance == pytest.approx(0.07)  # 7 random flags hit 75 % poison: 5.25 of 75
    few = np.zeros(200, bool)
    few[:5] = True  # 5 % of its class, Tran et al.'s regime: every poisoned one can be flagged
    assert det.spectral_capacity(labels, few, eps=0.05)[0] == 1.0


def test_score_histograms_share_bins_per_detector_and_are_densities():
    from experiments.backdoor.measure import HIST_BINS, score_histograms

    scores = {"det": {"clean": np.array([0.0, 0.0, 1.0, np.nan]), "trigger": np.array([1.0, 1.0])}}
    rows = pd.DataFrame(score_histograms(scores, step=7))
    assert set(rows.step) == {7} and set(rows.kind) == {"clean", "trigger"}
    clean, trigger = (rows[rows.kind == k] for k in ("clean", "trigger"))
    assert len(clean) == len(trigger) == HIST_BINS
    assert np.array_equal(clean.center.to_numpy(), trigger.center.to_numpy())
    width = clean.center.diff().iloc[1]
    assert (clean.density * width).sum() == pytest.approx(1.0)  # NaN dropped, not a bin
    assert trigger.density.iloc[-1] * width == pytest.approx(1.0)
