"""One task of the zoo: every method under every ablation, on the compiled model and on its
random-weight nulls, scored against the compiled circuit; and the compiled model's own checks.

Seeds: a compiled model is one fixed set of weights, so a seed changes only the resample pairing;
zero- and mean-ablation results on it are deterministic and computed once (the same value on every
seed). A null's seed draws its weights (`zoo.random_params`) and its resample pairing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from experiments.circuit_discovery import methods
from experiments.circuit_discovery.graph import Graph, node_outputs, patched_forward
from experiments.circuit_discovery.zoo import answers, compiled, domain, random_params, to_bridge

METHODS = ("patching", "acdc", "eap", "eap_ig")


def thresholds(spec: dict) -> list[float]:
    """ACDC's threshold sweep, log-spaced."""
    return list(np.logspace(np.log10(spec["low"]), np.log10(spec["high"]), spec["count"]))


def evaluate_task(task: str, zoo: dict) -> dict[str, pd.DataFrame]:
    """{"auc": ..., "roc": ..., "checks": ...} tidy tables of one task. Methods run in float64
    (weights and activations), so that an effect that is exactly zero scores ~1e-15."""
    model = compiled(task)
    graph = Graph(model.cfg.n_layers)
    tokens = model.token_ids(domain(model, zoo["length"]))
    auc_rows, roc_rows = [], []
    cached: dict[str, dict] = {}
    for kind in ("compiled", "random"):
        for seed in zoo["seeds"]:
            params = model.params if kind == "compiled" else random_params(model, seed)
            bridge = to_bridge(model, {k: v.double() for k, v in params.items()})
            for ablation in methods.ABLATIONS:
                key = f"{kind}-{ablation}"
                if key not in cached or kind != "compiled" or ablation == "resample":
                    s = methods.setup(bridge, graph, tokens, model.numerical, ablation, seed)
                    cached[key] = _all_methods(s, zoo)
                labels = {"task": task, "model": kind, "seed": seed, "ablation": ablation}
                rows, rocs = _scored(cached[key], graph.edges, model.circuit, seed)
                auc_rows += [labels | row for row in rows]
                roc_rows += [labels | row for row in rocs]
    return {
        "auc": pd.DataFrame(auc_rows),
        "roc": pd.DataFrame(roc_rows),
        "checks": checks(model, graph, zoo["length"]),
    }


def _all_methods(s: methods.Setup, zoo: dict) -> dict:
    """Each score method's edge scores (floored) and ACDC's circuit at each threshold."""
    return {
        "scores": {
            "patching": methods.floored(methods.patching_scores(s)),
            "eap": methods.floored(methods.eap_scores(s)),
            "eap_ig": methods.floored(methods.eap_ig_scores(s, zoo["ig_steps"])),
        },
        "acdc": [(t, methods.acdc(s, t)) for t in thresholds(zoo["thresholds"])],
    }


def _scored(found: dict, edges, truth, seed: int):
    """(AUC rows, ROC rows) against the truth: ACDC's staircase AUC (the published estimator)
    and the trapezoid beside it. The null of "EAP ranks as well as ACDC" is EAP's own scores in
    an order drawn with this seed."""
    curves = {name: methods.score_roc(v, truth) for name, v in found["scores"].items()}
    generator = np.random.default_rng(seed)
    eap = found["scores"]["eap"]
    shuffled = dict(zip(eap, generator.permutation(list(eap.values())), strict=True))
    curves["eap_shuffled"] = methods.score_roc(shuffled, truth)
    rocs = [
        {"method": name, "fpr": fpr, "tpr": tpr, "threshold": float("nan")}
        for name, points in curves.items()
        if name != "eap_shuffled"
        for fpr, tpr in points
    ]
    acdc_points = []
    for threshold, kept in found["acdc"]:
        fpr, tpr = methods.roc_point(kept, edges, truth)
        acdc_points.append((fpr, tpr))
        rocs.append({"method": "acdc", "fpr": fpr, "tpr": tpr, "threshold": threshold})
    curves["acdc"] = acdc_points
    rows = [
        {
            "method": name,
            "auc": methods.staircase_auc(points),
            "auc_trapezoid": methods.trapezoid_auc(points),
        }
        for name, points in curves.items()
    ]
    return rows, rocs


def checks(model, graph: Graph, length: int) -> pd.DataFrame:
    """The compiled model's controls: it computes its program on every input of every length,
    and under zero ablation each edge outside the circuit changes no output while each edge in it
    changes some (at the discovery length)."""
    bridge = to_bridge(model)
    right = total = 0
    for n in range(1, model.program.max_len + 1):
        sequences = domain(model, n)
        with torch.no_grad():
            out = bridge(model.token_ids(sequences))[:, 1:].double()
        for row, expected in zip(out, answers(model, sequences), strict=True):
            for logits, value in zip(row, expected, strict=True):
                right += _correct(model, logits, value)
                total += 1
    tokens = model.token_ids(domain(model, length))
    clean = node_outputs(bridge, graph, tokens)
    zero = {k: torch.zeros_like(v) for k, v in clean.items()}
    with torch.no_grad():
        base = bridge(tokens)
        change = {
            e: float((patched_forward(bridge, graph, tokens, zero, [e]) - base).abs().max())
            for e in graph.edges
        }
    outside = [v for e, v in change.items() if e not in model.circuit]
    inside = [v for e, v in change.items() if e in model.circuit]
    return pd.DataFrame(
        [
            {"task": model.program.name, "check": "exact_share", "value": right / total},
            {"task": model.program.name, "check": "noncircuit_max_change", "value": max(outside)},
            {"task": model.program.name, "check": "circuit_min_change", "value": min(inside)},
            {"task": model.program.name, "check": "n_edges", "value": float(len(graph.edges))},
            {"task": model.program.name, "check": "n_circuit", "value": float(len(inside))},
        ]
    )


TOLERANCE = 1e-4  # float32 logits of a one-hot output; the compiled attention leaks ~e^-50


def _correct(model, logits: torch.Tensor, value) -> bool:
    """The output is the program's value: the number (numerical), the one-hot of the value, or
    all zeros where the program has no value."""
    if model.numerical:
        return abs(float(logits[0]) - value) <= TOLERANCE
    target = torch.zeros_like(logits)
    if value is not None:
        target[model.program.output.values.index(value)] = 1.0
    return bool((logits - target).abs().max() <= TOLERANCE)


def run_task(task: str, zoo: dict, out) -> None:
    """The zoo job of one task: its auc, roc and checks tables."""
    tables = evaluate_task(task, zoo)
    for name, table in tables.items():
        table.to_parquet(getattr(out, name), index=False)
