"""Circuit discovery over edges: exhaustive patching, ACDC, EAP and EAP-IG, each under zero, mean
or resample ablation, on the edge-patched bridge forward of graph.py.

- Exhaustive activation patching: each edge alone is ablated; its score is the divergence of the
  output from the clean output (one forward per edge).
- ACDC (Conmy et al. 2023, Alg. 1): from the output back, each edge into a node is ablated for good
  if that raises the divergence from the clean output by less than the threshold; a node left with
  no outgoing edge loses its incoming edges unexamined. A sweep of thresholds gives the ROC points.
- EAP (Syed et al. 2023): the first-order estimate of each edge's effect, (corrupted(u) - u) . the
  gradient of the metric at d's input, from one forward and one backward.
- EAP-IG (Hanna et al. 2024): the same with the gradient averaged over `steps` points on the
  straight path from the clean to the corrupted embedding.
The divergence is KL(clean || patched) of the output distribution for a categorical program and
the mean squared difference for a numerical one, averaged over inputs and token positions (ACDC's
metrics for tracr). It is zero at the clean output and so is its gradient: the gradient methods
use instead each input's log-probability of the clean answer (the output itself when numerical),
and score an edge by the mean over inputs of |estimated change|, so that changes of opposite sign
on different inputs do not cancel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from experiments.circuit_discovery.graph import Graph, node_outputs, patched_forward

ABLATIONS = ("zero", "mean", "resample")
Edge = tuple[str, str]


@dataclass
class Setup:
    """A model, its inputs and the corrupted node outputs one ablation replaces edges with."""

    bridge: object
    graph: Graph
    tokens: torch.Tensor
    numerical: bool
    clean_logits: torch.Tensor
    clean: dict[str, torch.Tensor]
    corrupted: dict[str, torch.Tensor]

    def forward(self, ablated=(), **kwargs) -> torch.Tensor:
        return patched_forward(
            self.bridge, self.graph, self.tokens, self.corrupted, ablated, **kwargs
        )

    def divergence(self, ablated) -> float:
        with torch.no_grad():
            return divergence(self.forward(ablated), self.clean_logits, self.numerical)


def derangement(n: int, seed: int) -> torch.Tensor:
    """A seeded permutation with no fixed point: each input is patched from another (ACDC)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=generator)
        if n < 2 or not (perm == torch.arange(n)).any():
            return perm


def setup(bridge, graph: Graph, tokens, numerical: bool, ablation: str, seed: int) -> Setup:
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation {ablation!r} is not one of {ABLATIONS}")
    clean = node_outputs(bridge, graph, tokens)
    if ablation == "zero":
        corrupted = {k: torch.zeros_like(v) for k, v in clean.items()}
    elif ablation == "mean":  # over the inputs, per position
        corrupted = {k: v.mean(0, keepdim=True).expand_as(v) for k, v in clean.items()}
    else:
        corrupted = node_outputs(bridge, graph, tokens[derangement(len(tokens), seed)])
    with torch.no_grad():
        clean_logits = bridge(tokens)
    return Setup(bridge, graph, tokens, numerical, clean_logits, clean, corrupted)


def divergence(logits: torch.Tensor, clean: torch.Tensor, numerical: bool) -> float:
    """Mean over inputs and token positions (BOS excluded) of KL(clean || patched) or the
    squared difference."""
    logits, clean = logits[:, 1:].double(), clean[:, 1:].double()
    if numerical:
        return float(((logits - clean) ** 2).mean())
    target = clean.log_softmax(-1)
    return float((target.exp() * (target - logits.log_softmax(-1))).sum(-1).mean())


def answer_metric(logits: torch.Tensor, clean: torch.Tensor, numerical: bool) -> torch.Tensor:
    """Per input: summed log-probability of the clean answer (or summed output), [batch]."""
    logits, clean = logits[:, 1:], clean[:, 1:]
    if numerical:
        return logits.sum((1, 2))
    answer = clean.argmax(-1, keepdim=True)
    return logits.log_softmax(-1).gather(-1, answer).squeeze(-1).sum(-1)


def patching_scores(s: Setup) -> dict[Edge, float]:
    return {edge: s.divergence([edge]) for edge in s.graph.edges}


def acdc(s: Setup, threshold: float) -> set[Edge]:
    """The edges ACDC keeps at this threshold."""
    graph = s.graph
    kept, ablated = set(graph.edges), set()
    current = s.divergence(ablated)
    for destination in reversed(graph.destinations):
        node = graph.node_of(destination)
        incoming = [(u, destination) for u in reversed(graph.upstream(destination))]
        if destination != "out" and not any(u == node for u, _ in kept):
            kept -= set(incoming)  # nothing reads this node any more
            ablated |= set(incoming)
            continue
        for edge in incoming:
            trial = ablated | {edge}
            value = s.divergence(trial)
            if value - current < threshold:
                ablated, current = trial, value
                kept.discard(edge)
    return kept


def _gradients(s: Setup, embed: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """d(summed per-input metric) / d(each destination's input), per input."""
    deltas = {
        d: torch.zeros_like(s.clean["embed"], requires_grad=True) for d in s.graph.destinations
    }
    with torch.enable_grad():
        logits = s.forward((), deltas=deltas, embed=embed)
        metric = answer_metric(logits, s.clean_logits, s.numerical).sum()
        grads = torch.autograd.grad(metric, list(deltas.values()))
    return dict(zip(deltas, grads, strict=True))


def attributions(s: Setup, grads: dict[str, torch.Tensor]) -> dict[Edge, torch.Tensor]:
    """Each edge's estimated change of each input's metric: (corrupted(u) - u) . grad at d."""
    return {
        (u, d): ((s.corrupted[u] - s.clean[u]) * grads[d]).sum((1, 2)) for u, d in s.graph.edges
    }


def _edge_scores(s: Setup, grads: dict[str, torch.Tensor]) -> dict[Edge, float]:
    return {edge: float(a.abs().mean()) for edge, a in attributions(s, grads).items()}


def eap_gradients(s: Setup) -> dict[str, torch.Tensor]:
    return _gradients(s)


def ig_gradients(s: Setup, steps: int) -> dict[str, torch.Tensor]:
    """Gradients averaged at embeddings clean + (k / steps)(corrupted - clean), k = 1..steps."""
    if steps < 1:
        raise ValueError(f"EAP-IG steps must be at least 1, got {steps}")
    clean, corrupted = s.clean["embed"], s.corrupted["embed"]
    total = None
    for k in range(1, steps + 1):
        grads = _gradients(s, embed=clean + (k / steps) * (corrupted - clean))
        total = grads if total is None else {d: total[d] + g for d, g in grads.items()}
    return {d: g / steps for d, g in total.items()}


def eap_scores(s: Setup) -> dict[Edge, float]:
    return _edge_scores(s, eap_gradients(s))


def eap_ig_scores(s: Setup, steps: int) -> dict[Edge, float]:
    return _edge_scores(s, ig_gradients(s, steps))


def auc(scores: dict[Edge, float], truth: set[Edge]) -> float:
    """ROC AUC of ranking edges by score against the true edges (ties count one half)."""
    from scipy.stats import rankdata

    edges = list(scores)
    positive = np.array([e in truth for e in edges])
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both circuit and non-circuit edges")
    ranks = rankdata([scores[e] for e in edges])
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_point(kept: set[Edge], edges: list[Edge], truth: set[Edge]) -> tuple[float, float]:
    """(false positive rate, true positive rate) of one discovered circuit."""
    n_pos = sum(e in truth for e in edges)
    tp = sum(e in truth for e in kept)
    return (len(kept) - tp) / (len(edges) - n_pos), tp / n_pos


def score_roc(scores: dict[Edge, float], truth: set[Edge]) -> list[tuple[float, float]]:
    """The ROC curve of a score ranking: one point per distinct score, from (0, 0) to (1, 1)."""
    edges = list(scores)
    points = [(0.0, 0.0)]
    for cut in sorted(set(scores.values()), reverse=True):
        points.append(roc_point({e for e in edges if scores[e] >= cut}, edges, truth))
    return points


def staircase(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The ROC points with (0, 0) and (1, 1), sorted by false then true positive rate, the true
    positive rate made non-decreasing (a point below an earlier one adds nothing)."""
    curve = np.array(sorted(set(points) | {(0.0, 0.0), (1.0, 1.0)}))
    return curve[:, 0], np.maximum.accumulate(curve[:, 1])


def staircase_auc(points: list[tuple[float, float]]) -> float:
    """ACDC's ROC AUC (Conmy et al.'s code, `pessimistic_auc`): the points and (0, 0), (1, 1)
    sorted by false then true positive rate, the true positive rate made non-decreasing (a point
    below an earlier one adds nothing), and each rise counted from its false positive rate on:
    sum of (1 - fpr_i) x (rise at i). The published AUCs this experiment compares with are this."""
    fpr, tpr = staircase(points)
    return float(np.sum((1 - fpr[1:]) * np.diff(tpr)))


def trapezoid_auc(points: list[tuple[float, float]]) -> float:
    """Area under the same points joined by straight lines (for a score ranking with its every
    distinct score as a point this is the Mann-Whitney AUC, ties counting one half)."""
    x, y = staircase(points)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


# A score below this share of the largest is not a found edge: below what a float32 model (every
# model this suite trains) resolves. The zoo scores in float64, where an exact zero stays ~1e-15.
SCORE_FLOOR = 1e-6


def floored(scores: dict[Edge, float]) -> dict[Edge, float]:
    top = max(scores.values(), default=0.0)
    return {e: (v if v >= SCORE_FLOOR * top else 0.0) for e, v in scores.items()}
