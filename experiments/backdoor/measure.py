"""Audit every checkpoint of a run with every detector; write tidy tables.

What each detector is given (none is ever told the trigger tokens, except the probe, which is
given some of them and tested on one it never saw):
- trusted data: the training pairs that carry an ordinary context (clean inputs the defender can
  vouch for); the benign context and the triggers are never in it;
- evaluation: the held-out pairs in an ordinary context (clean), in a trigger context (trigger)
  and in the benign context (benign, novel but computed by the ordinary circuit);
- the training set (for the training-set filters): every training input with the label the run
  was trained on; the "poisoned" ones are those with a trigger context (in the twin they carry
  ordinary labels: a filter that still finds them finds the token, not a hidden computation).

Per checkpoint (rows [step, measure, component, value]): each detector's AUROC of trigger vs
clean and of benign vs clean; Mahalanobis at each hook and at the best hook, chosen on one half of
the held-out pairs and scored on the other (a statistic chosen from data is tested on other data);
the held-out-trigger probe; the mechanistic score; the filters' recovered shares; each
detector's score histograms by kind (what the explorer draws at the checkpoint). At the final
checkpoint also bootstrap intervals and the per-input scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from alignlab.checkpoints import load_weights, run_checkpoints
from experiments.backdoor import detectors as det
from experiments.backdoor.task import (
    HOOKS,
    KINDS,
    BackdoorTransformer,
    Inputs,
    ModelShape,
    TaskConfig,
    evaluation_inputs,
    training_inputs,
    with_context,
)

PROBE_HOOK = "blocks.0.hook_resid_post"  # the probe and the training-set filters read here
FILTER_HOOK = PROBE_HOOK


@dataclass(frozen=True)
class AuditSets:
    task: TaskConfig
    train: Inputs  # every training input
    train_labels: np.ndarray  # as the run was trained
    held_out: dict[str, Inputs]  # clean, trigger, benign on the held-out pairs
    known: dict[int, Inputs]  # trigger token -> the trusted pairs in that context (probe)

    @property
    def trusted_mask(self) -> np.ndarray:
        """Training inputs in an ordinary context: the trusted clean data."""
        return self.train.kind == KINDS.index("ordinary")

    @property
    def trusted(self) -> Inputs:
        return self.train.subset(self.trusted_mask)

    @property
    def select_half(self) -> np.ndarray:
        """Held-out pairs that choose the best hook (the other half scores it): a seeded random
        half, not alternate pairs, which would give each half its own ordinary contexts (the
        contexts cycle through the pairs)."""
        n = len(self.held_out["clean"].kind)
        chosen = np.random.default_rng([self.task.data_seed, 2]).permutation(n)[: n // 2]
        return np.isin(np.arange(n), chosen)


def audit_sets(run: dict) -> AuditSets:
    task = TaskConfig.of(run)
    train = training_inputs(task)
    trusted = train.subset(train.kind == KINDS.index("ordinary"))
    pairs = np.stack([trusted.a, trusted.b], axis=1)
    known = {int(t): with_context(task, pairs, [t], "trigger") for t in task.trigger_tokens}
    labels = train.labels(task, twin=run["twin"]).numpy()
    return AuditSets(task, train, labels, evaluation_inputs(task), known)


@torch.no_grad()
def _activations(model: BackdoorTransformer, sets: AuditSets) -> dict[str, dict[str, np.ndarray]]:
    """{set name: {hook: [n, d] float64}} for train, clean, trigger, benign, known:<token>."""
    named = {"train": sets.train, **sets.held_out}
    named |= {f"known:{t}": inputs for t, inputs in sets.known.items()}
    tokens = torch.cat([inputs.tokens for inputs in named.values()])
    acts = {hook: value.double().numpy() for hook, value in model.activations(tokens).items()}
    out, start = {}, 0
    for name, inputs in named.items():
        stop = start + len(inputs.tokens)
        out[name] = {hook: acts[hook][start:stop] for hook in HOOKS}
        start = stop
    return out


def _mahalanobis(acts, sets: AuditSets) -> tuple[list[dict], dict]:
    rows, scores = [], {}
    for hook in HOOKS:
        score = det.mahalanobis(acts["train"][hook][sets.trusted_mask])
        scores[hook] = {kind: score(acts[kind][hook]) for kind in ("clean", "trigger", "benign")}
        for against in ("trigger", "benign"):
            value = det.auroc(scores[hook][against], scores[hook]["clean"])
            rows.append(
                {"measure": f"mahalanobis_auroc_{against}", "component": hook, "value": value}
            )
    pick, rest = sets.select_half, ~sets.select_half
    best = max(HOOKS, key=lambda h: det.auroc(scores[h]["trigger"][pick], scores[h]["clean"][pick]))
    held = {kind: s[rest] for kind, s in scores[best].items()}
    best_rows = {
        "mahalanobis_best_auroc_trigger": det.auroc(held["trigger"], held["clean"]),
        "mahalanobis_best_auroc_benign": det.auroc(held["benign"], held["clean"]),
        "mahalanobis_best_hook": float(HOOKS.index(best)),
    }
    rows += [{"measure": m, "component": best, "value": v} for m, v in best_rows.items()]
    return rows, {"mahalanobis": held}


def _probe(acts, sets: AuditSets) -> tuple[list[dict], dict]:
    """For each trigger: train on the others (trusted pairs in their contexts) vs trusted clean,
    test on the held-out pairs in the unseen trigger's context vs held-out clean. Scores are
    standardised by each fold's clean scores; each trigger input has the one score of the probe
    that never saw its trigger, each clean or benign input the mean of the folds' scores (so every
    input counts once in the AUROC and its bootstrap)."""
    trusted = acts["train"][PROBE_HOOK][sets.trusted_mask]
    triggers = sets.held_out["trigger"].tokens[:, 0].numpy()
    pooled = {"trigger": [], "clean": [], "benign": []}
    for token in sets.known:
        # positives: each trusted pair once, in one of the other triggers (cycled), so the
        # classes are balanced
        others = [acts[f"known:{t}"][PROBE_HOOK] for t in sets.known if t != token]
        positives = np.stack(others)[np.arange(len(trusted)) % len(others), np.arange(len(trusted))]
        x = np.concatenate([trusted, positives])
        y = np.r_[np.zeros(len(trusted)), np.ones(len(positives))]
        probe = det.linear_probe(x, y)
        test = {
            "trigger": acts["trigger"][PROBE_HOOK][triggers == token],
            "clean": acts["clean"][PROBE_HOOK],
            "benign": acts["benign"][PROBE_HOOK],
        }
        fold = {kind: probe(value) for kind, value in test.items()}
        mean, sd = fold["clean"].mean(), fold["clean"].std() + 1e-12
        for kind, value in fold.items():
            pooled[kind].append((value - mean) / sd)
    scores = {kind: np.mean(parts, axis=0) for kind, parts in pooled.items() if kind != "trigger"}
    scores["trigger"] = np.concatenate(pooled["trigger"])
    rows = [
        {"measure": f"probe_auroc_{against}", "component": PROBE_HOOK, "value": value}
        for against, value in (
            ("trigger", det.auroc(scores["trigger"], scores["clean"])),
            ("benign", det.auroc(scores["benign"], scores["clean"])),
        )
    ]
    return rows, {"probe": scores}


def _filters(acts, sets: AuditSets) -> list[dict]:
    reps = acts["train"][FILTER_HOOK]
    poisoned = sets.train.kind == KINDS.index("trigger")
    components = det.class_components(reps, sets.train_labels)
    spectral_scores = det.spectral_scores(reps, sets.train_labels, components)
    spectral = det.spectral_flags(spectral_scores, sets.train_labels, sets.task.trigger_share)
    clusters = det.cluster_flags(reps, sets.train_labels, components)
    spectral_auroc = det.auroc(spectral_scores[poisoned], spectral_scores[~poisoned])
    cap, chance = det.spectral_capacity(sets.train_labels, poisoned, sets.task.trigger_share)
    return [
        {"measure": "spectral_recoverable", "component": FILTER_HOOK, "value": cap},
        {"measure": "spectral_chance", "component": FILTER_HOOK, "value": chance},
        {"measure": "spectral_recovered", "component": FILTER_HOOK,
         "value": det.recovered_share(spectral, poisoned)},
        {"measure": "clustering_recovered", "component": FILTER_HOOK,
         "value": det.recovered_share(clusters, poisoned)},
        {"measure": "spectral_auroc_poison", "component": FILTER_HOOK, "value": spectral_auroc},
    ]  # fmt: skip


def _mechanistic(acts, sets: AuditSets, threshold: float) -> tuple[list[dict], dict]:
    p = sets.task.p
    trusted = sets.trusted
    logits = acts["train"]["logits"][sets.trusted_mask]
    keys = det.key_frequencies(
        det.fourier_shares(logits, (trusted.a + trusted.b) % p, p), threshold
    )
    scores = {
        kind: det.mechanistic_scores(acts[kind]["logits"], (inputs.a + inputs.b) % p, p, keys)
        for kind, inputs in sets.held_out.items()
    }
    rows = [
        {"measure": f"mechanistic_auroc_{against}", "component": "logits",
         "value": det.auroc(scores[against], scores["clean"])}
        for against in ("trigger", "benign")
    ]  # fmt: skip
    rows.append({"measure": "mechanistic_n_keys", "component": "logits", "value": float(len(keys))})
    return rows, {"mechanistic": scores}


def checkpoint_measures(model, sets: AuditSets, analysis: dict) -> tuple[list[dict], dict]:
    """Rows [measure, component, value] of one checkpoint, and the per-input scores
    {detector: {kind: scores}} the histograms and intervals use."""
    acts = _activations(model, sets)
    rows, scores = _mahalanobis(acts, sets)
    for part in (_probe(acts, sets), _mechanistic(acts, sets, analysis["key_freq_threshold"])):
        rows += part[0]
        scores |= part[1]
    return rows + _filters(acts, sets), scores


def _intervals(scores: dict, n_boot: int, seed: int) -> list[dict]:
    rows = []
    for detector, by_kind in scores.items():
        for against in ("trigger", "benign"):
            low, high = det.bootstrap_auroc(by_kind[against], by_kind["clean"], n_boot, seed)
            measure = f"{detector}{'_best' if detector == 'mahalanobis' else ''}_auroc_{against}"
            rows += [
                {"measure": f"{measure}_ci_low", "component": "", "value": low},
                {"measure": f"{measure}_ci_high", "component": "", "value": high},
            ]
    return rows


HIST_BINS = 30


def score_histograms(scores: dict, step: int) -> list[dict]:
    """Per detector: bin edges over every kind's finite scores at this checkpoint, and each kind's
    density in them (rows step, detector, kind, center, density)."""
    rows = []
    for detector, by_kind in scores.items():
        finite = {k: v[np.isfinite(v)] for k, v in by_kind.items()}
        pooled = np.concatenate(list(finite.values()))
        if pooled.size == 0:
            continue
        edges = np.histogram_bin_edges(pooled, bins=HIST_BINS)
        centers = (edges[1:] + edges[:-1]) / 2
        for kind, values in finite.items():
            if values.size:
                density, _ = np.histogram(values, bins=edges, density=True)
                rows += [
                    {"step": step, "detector": detector, "kind": kind, "center": c, "density": d}
                    for c, d in zip(centers, density, strict=True)
                ]
    return rows


def measure_run(run: dict, analysis: dict, run_dir, train_log, out, out_scores, out_hist) -> None:
    """Every checkpoint -> measures.parquet and score_hist.parquet; final per-input scores ->
    scores.parquet."""
    sets, rows, hist_rows, t0 = audit_sets(run), [], [], time.perf_counter()
    checkpoints = run_checkpoints(Path(run_dir), Path(train_log))
    if not checkpoints:
        raise ValueError(f"{run_dir}: its train log lists no checkpoint to audit")
    for step, path in checkpoints:
        params, _, shape = load_weights(path)
        model = BackdoorTransformer(ModelShape(**shape), params)
        found, scores = checkpoint_measures(model, sets, analysis)
        rows += [{"step": step, **row} for row in found]
        hist_rows += score_histograms(scores, step)
    rows += [{"step": step, **r} for r in _intervals(scores, analysis["n_boot"], run["seed"])]
    log = pd.read_parquet(train_log).melt(id_vars="step", var_name="measure")
    frame = pd.concat([pd.DataFrame(rows), log.assign(component="")], ignore_index=True)
    frame[["step", "measure", "component", "value"]].to_parquet(out, index=False)
    hist = [
        pd.DataFrame({"detector": detector, "kind": kind, "score": values})
        for detector, by_kind in scores.items()
        for kind, values in by_kind.items()
    ]
    pd.concat(hist, ignore_index=True).to_parquet(out_scores, index=False)
    pd.DataFrame(hist_rows).to_parquet(out_hist, index=False)
    print(f"{len(checkpoints)} checkpoints audited in {time.perf_counter() - t0:.1f} s")
