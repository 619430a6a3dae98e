"""Backdoor detectors, each a pure function of activations (numpy, float64), and their scores.

- `auroc`, `bootstrap_auroc`: the Mann-Whitney AUROC of anomalous vs clean scores (ties count
  one half) and its percentile bootstrap interval (anomalous and clean inputs resampled apart).
- `mahalanobis`: the standard baseline (Lee et al. 2018; cupbearer's MahalanobisDetector): a
  Gaussian fitted to trusted clean activations; score = squared Mahalanobis distance. The
  empirical covariance gets a ridge of 1e-6 of its mean variance, so a direction the trusted
  data never varies in (a context token it never saw) gives a large but finite distance.
  (Shrinking toward the mean variance, as Ledoit-Wolf does, would blunt exactly those quiet
  directions: with variances 9 and 0.01 it halved the distances of clean data.)
- `spectral_flags` (Tran et al. 2018): per label class, the squared projection of the centred
  representations on their top singular vector; the top 1.5 eps n_c of each class are flagged.
- `cluster_flags` (Chen et al. 2018, activation clustering): per label class, PCA to 10
  dimensions, 2-means; the smaller cluster is flagged when it holds at most 35 % of the class.
- `linear_probe`: a logistic-regression probe on standardised activations.
- `fourier_shares`, `key_frequencies`, `mechanistic_scores`: the clean circuit as a per-input
  score. For logits l[y] of an input with s = (a + b) mod p, centred over y, the share explained by
  frequency k is <l, u_k>^2 / (|u_k|^2 |l|^2) with u_k[y] = cos(w_k (s - y)), w_k = 2 pi k / p:
  Nanda et al.'s restricted-loss terms, one input at a time. The u_k (k = 1..(p-1)/2) are
  orthogonal over y with |u_k|^2 = p / 2 and orthogonal to the constant, so shares add. The
  key frequencies are taken from trusted clean inputs only, by the suite's rule; the score is
  the share NOT explained by them: an input computed by another algorithm scores high, a new
  input computed by the same circuit does not.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from alignlab import fourier

RIDGE = 1e-6  # of the mean variance, added to the covariance's diagonal
SPECTRAL_FACTOR = 1.5  # Tran et al.: remove the top 1.5 eps of each class
CLUSTER_DIMS = 10  # Chen et al.: reduce to 10 dimensions before clustering
CLUSTER_MAX_SHARE = 0.35  # Chen et al.: a cluster holding <= 35 % of its class is poisoned


def auroc(anomalous: np.ndarray, clean: np.ndarray) -> float:
    """P(score of an anomalous input > score of a clean one), ties one half; NaN if either set
    is empty or any score is not finite."""
    anomalous, clean = np.asarray(anomalous, float), np.asarray(clean, float)
    both = np.concatenate([anomalous, clean])
    if not len(anomalous) or not len(clean) or not np.isfinite(both).all():
        return float("nan")
    ranks = rankdata(both)[: len(anomalous)]
    n1, n0 = len(anomalous), len(clean)
    return float((ranks.sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_auroc(
    anomalous: np.ndarray, clean: np.ndarray, n_boot: int = 1000, seed: int = 0, level=0.95
) -> tuple[float, float]:
    """Percentile interval of the AUROC over `n_boot` resamplings of both sets.

    Every resample's AUROC is w_a^T C w_c / (n_a n_c) with C[i, j] = 1[a_i > c_j] + 1/2 1[a_i =
    c_j] and w the resample's counts, so all resamples are two matrix products.
    """
    anomalous, clean = np.asarray(anomalous, float), np.asarray(clean, float)
    if not np.isfinite(auroc(anomalous, clean)):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    wins = (anomalous[:, None] > clean[None]) + 0.5 * (anomalous[:, None] == clean[None])
    counts = [rng.multinomial(n, np.full(n, 1 / n), n_boot) for n in (len(anomalous), len(clean))]
    values = ((counts[0] @ wins) * counts[1]).sum(1) / (len(anomalous) * len(clean))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def mahalanobis(trusted: np.ndarray, ridge: float = RIDGE):
    """Fit on trusted activations [n, d]; return score(x) = squared Mahalanobis distance."""
    trusted = np.asarray(trusted, float)
    mean = trusted.mean(0)
    cov = np.cov(trusted, rowvar=False).reshape(trusted.shape[1], -1)
    cov += ridge * max(np.trace(cov) / len(cov), np.finfo(float).tiny) * np.eye(len(cov))
    chol = np.linalg.cholesky(cov)

    def score(x):
        white = np.linalg.solve(chol, (np.asarray(x, float) - mean).T)
        return (white**2).sum(0)

    return score


def class_components(reps: np.ndarray, labels: np.ndarray) -> list[tuple]:
    """Per label class: (its rows, its class-centred representations, their top CLUSTER_DIMS
    right singular vectors). Both filters below start from it; computing it once per checkpoint
    halves the audit's SVDs."""
    reps, out = np.asarray(reps, float), []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        centred = reps[rows] - reps[rows].mean(0)
        out.append((rows, centred, np.linalg.svd(centred, full_matrices=False)[2][:CLUSTER_DIMS]))
    return out


def spectral_scores(reps: np.ndarray, labels: np.ndarray, components=None) -> np.ndarray:
    """Per example: squared projection of its class-centred representation on the class's top
    right singular vector (`components`: `class_components(reps, labels)`, if already made)."""
    scores = np.zeros(len(reps))
    for rows, centred, basis in components or class_components(reps, labels):
        scores[rows] = (centred @ basis[0]) ** 2
    return scores


def spectral_flags(scores: np.ndarray, labels: np.ndarray, eps: float) -> np.ndarray:
    """Tran et al.'s filter on `spectral_scores`: in each class, flag the floor(1.5 eps n_c)
    highest."""
    flags = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        n_flag = int(SPECTRAL_FACTOR * eps * len(rows))
        flags[rows[np.argsort(-scores[rows], kind="stable")[:n_flag]]] = True
    return flags


def spectral_capacity(labels, poisoned: np.ndarray, eps: float) -> tuple[float, float]:
    """(most, chance): the largest share of the poisoned examples Tran et al.'s filter can flag
    when it flags floor(1.5 eps n_c) per class, and the share it flags in expectation if its
    flags fell at random within each class. A poison that is most of its class caps the first."""
    labels, poisoned = np.asarray(labels), np.asarray(poisoned, bool)
    if not poisoned.any():
        return float("nan"), float("nan")
    most = chance = 0.0
    for label in np.unique(labels[poisoned]):
        rows = labels == label
        n_flag, n_bad = int(SPECTRAL_FACTOR * eps * rows.sum()), int((poisoned & rows).sum())
        most += min(n_flag, n_bad)
        chance += n_flag * n_bad / rows.sum()
    return most / poisoned.sum(), chance / poisoned.sum()


def cluster_flags(reps: np.ndarray, labels: np.ndarray, components=None) -> np.ndarray:
    """Chen et al.'s activation clustering: per class, the top principal components, 2-means
    (scipy's, started from the split by the first component's sign, so it is deterministic);
    the smaller cluster is flagged if it holds at most CLUSTER_MAX_SHARE of the class.
    (scikit-learn's PCA + KMeans cost 50 ms per class here, 30x scipy's: 59 classes at every
    checkpoint.) `components`: `class_components(reps, labels)`, if already made."""
    flags = np.zeros(len(labels), bool)
    for rows, centred, basis in components or class_components(reps, labels):
        reduced = centred @ basis.T
        side = reduced[:, 0] >= 0
        if side.all() or not side.any():
            continue  # no spread along any direction: one cluster
        start = np.stack([reduced[side].mean(0), reduced[~side].mean(0)])
        _, assign = kmeans2(reduced, start, minit="matrix")
        small = int(np.bincount(assign, minlength=2).argmin())
        if (assign == small).mean() <= CLUSTER_MAX_SHARE:
            flags[rows[assign == small]] = True
    return flags


def recovered_share(flags: np.ndarray, poisoned: np.ndarray) -> float:
    """Share of the poisoned examples a filter flags (NaN when there are none)."""
    return float(flags[poisoned].mean()) if poisoned.any() else float("nan")


def linear_probe(x_train, y_train, seed: int = 0):
    """Logistic regression (L2, C = 1) on activations standardised by the training set's
    mean and deviation; returns score(x), the decision values."""
    x_train = np.asarray(x_train, float)
    mean, scale = x_train.mean(0), x_train.std(0) + 1e-8
    probe = LogisticRegression(max_iter=2000, random_state=seed)
    probe.fit((x_train - mean) / scale, y_train)
    return lambda x: probe.decision_function((np.asarray(x, float) - mean) / scale)


def fourier_shares(logits: np.ndarray, sums: np.ndarray, p: int) -> np.ndarray:
    """[n, (p - 1) / 2]: each frequency's share of each input's centred logits (see above)."""
    logits = np.asarray(logits, float)
    centred = logits - logits.mean(1, keepdims=True)
    k = np.arange(1, (p - 1) // 2 + 1)
    phase = lambda x: 2 * np.pi * (np.outer(x, k) % p) / p  # noqa: E731  (exact mod p first)
    s, y = phase(np.asarray(sums)), phase(np.arange(p))  # [n, K], [p, K]
    # <l, u_k> with cos(w_k (s - y)) = cos(w_k s) cos(w_k y) + sin(w_k s) sin(w_k y)
    coeff = np.cos(s) * (centred @ np.cos(y)) + np.sin(s) * (centred @ np.sin(y))
    norm2 = (centred**2).sum(1, keepdims=True)
    return coeff**2 / (p / 2) / np.where(norm2 > 0, norm2, np.inf)


def key_frequencies(trusted_shares: np.ndarray, threshold: float) -> list[int]:
    """The suite's key-frequency rule (`alignlab.fourier.key_frequencies`: a norm at least
    `threshold` of the largest) on each frequency's root-mean-square amplitude over trusted
    inputs, sqrt(mean share): shares are energies, the rule compares norms."""
    norms = torch.from_numpy(np.sqrt(np.asarray(trusted_shares, float).mean(0)))
    return fourier.key_frequencies(norms, threshold)


def mechanistic_scores(logits: np.ndarray, sums: np.ndarray, p: int, keys: list[int]):
    """1 - the share of each input's centred logits explained by the key frequencies."""
    shares = fourier_shares(logits, sums, p)
    return 1.0 - shares[:, np.asarray(keys) - 1].sum(1)
