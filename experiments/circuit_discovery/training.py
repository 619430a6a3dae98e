"""Automated discovery over training: at each checkpoint of a grokking run, the neurons and heads
that node-level EAP-IG keeps at a fixed faithfulness, against the Fourier circuit of the end.

Nodes are the MLP neurons (`blocks.0.mlp.hook_post`) and attention heads (`blocks.0.attn.hook_z`)
at the '=' position, the only one the loss reads. Ablation is the mean over the inputs (a node
outside the circuit outputs its average). Scores are EAP-IG's (methods.py): the gradient of each
input's log-probability of the right answer, averaged over embeddings on the path from the clean
to the mean embedding, times (mean - clean) activation, |.|, averaged over inputs. The circuit is
the smallest top-scored set whose faithfulness, (L(none) - L(set)) / (L(none) - L(all)) on the
cross-entropy over the inputs, reaches `faithfulness` (binary search: faithfulness is taken to grow
with the set). Where the whole model beats the all-ablated one by less than MIN_GAP nats, there
is no circuit to recover and the row is NaN.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from alignlab.bridge import load_bridge, tokens
from alignlab.checkpoints import run_checkpoints

MIN_GAP = 0.05  # nats: below this the model is no better than its mean-ablated self
POST, Z = "blocks.0.mlp.hook_post", "blocks.0.attn.hook_z"


def pairs(p: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded sample of n of the p^2 pairs (all of them when n >= p^2), as (a, b)."""
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(p * p, generator=generator)[: min(n, p * p)].sort().values
    return index // p, index % p


class NodeModel:
    """A grokking checkpoint as a bridge with mean-ablation and gradient hooks on its nodes."""

    def __init__(self, bridge, a: torch.Tensor, b: torch.Tensor):
        self.bridge, self.p = bridge, bridge.cfg.d_vocab_out
        self.tokens = tokens(a, b, self.p)
        self.labels = (a + b) % self.p
        with torch.no_grad():
            _, cache = bridge.run_with_cache(self.tokens, names_filter=[POST, Z, _EMBED])
        self.clean = {POST: cache[POST][:, -1], Z: cache[Z][:, -1]}
        self.mean = {k: v.mean(0, keepdim=True) for k, v in self.clean.items()}
        self.embed = cache[_EMBED]
        self.n_neurons, self.n_heads = self.clean[POST].shape[-1], self.clean[Z].shape[-2]

    def loss(self, keep: torch.Tensor) -> float:
        """Cross-entropy with the nodes outside `keep` (bool [neurons + heads]) mean-ablated."""
        masks = {POST: keep[: self.n_neurons], Z: keep[self.n_neurons :, None]}

        def ablate(name):
            def hook(x, hook):
                x = x.clone()
                x[:, -1] = torch.where(masks[name], x[:, -1], self.mean[name])
                return x

            return hook

        with torch.no_grad():
            logits = self.bridge.run_with_hooks(
                self.tokens, fwd_hooks=[(POST, ablate(POST)), (Z, ablate(Z))]
            )[:, -1]
        return float(F.cross_entropy(logits.double(), self.labels))

    def scores(self, steps: int) -> torch.Tensor:
        """EAP-IG score of every node, [neurons + heads]."""
        total = {POST: 0.0, Z: 0.0}
        mean_embed = self.embed.mean(0, keepdim=True)
        for k in range(1, steps + 1):
            embed = self.embed + (k / steps) * (mean_embed - self.embed)
            for name, grad in self._gradients(embed).items():
                total[name] = total[name] + grad / steps
        neuron = ((self.mean[POST] - self.clean[POST]) * total[POST]).abs().mean(0)
        head = ((self.mean[Z] - self.clean[Z]) * total[Z]).sum(-1).abs().mean(0)
        return torch.cat([neuron, head]).double()

    def _gradients(self, embed: torch.Tensor) -> dict[str, torch.Tensor]:
        """d(summed log-probability of the answers) / d(node activations) at '=', per input.
        Zeros that require grad are added at the nodes, so no path through them is cut."""
        deltas = {}

        def replace_embed(x, hook):
            return embed

        def add_delta(name):
            def hook(x, hook):
                deltas[name] = torch.zeros_like(x, requires_grad=True)
                return x + deltas[name]

            return hook

        hooks = [(_EMBED, replace_embed), (POST, add_delta(POST)), (Z, add_delta(Z))]
        with torch.enable_grad():
            logits = self.bridge.run_with_hooks(self.tokens, fwd_hooks=hooks)[:, -1]
            log_prob = logits.double().log_softmax(-1).gather(1, self.labels[:, None]).sum()
            grads = torch.autograd.grad(log_prob, [deltas[POST], deltas[Z]])
        return {POST: grads[0][:, -1], Z: grads[1][:, -1]}


_EMBED = "blocks.0.hook_resid_pre"


def circuit_at(model: NodeModel, faithfulness: float, steps: int) -> dict:
    """The smallest top-scored node set reaching `faithfulness`, and its losses."""
    n = model.n_neurons + model.n_heads
    order = torch.argsort(model.scores(steps), descending=True)
    none, full = (
        model.loss(torch.zeros(n, dtype=torch.bool)),
        model.loss(torch.ones(n, dtype=torch.bool)),
    )
    row = {"loss_all": full, "loss_none": none}
    if none - full < MIN_GAP:
        return row | {"n_nodes": float("nan"), "faithfulness": float("nan"), "nodes": None}

    def keep(k):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[order[:k]] = True
        return mask

    low, high = 0, n  # faithfulness(high) = 1 >= target
    while low < high:
        mid = (low + high) // 2
        if (none - model.loss(keep(mid))) / (none - full) >= faithfulness:
            high = mid
        else:
            low = mid + 1
    reached = (none - model.loss(keep(high))) / (none - full)
    return row | {"n_nodes": high, "faithfulness": reached, "nodes": order[:high].tolist()}


def overlap(found: set[int], truth: set[int]) -> dict[str, float]:
    """Precision, recall and Jaccard of found neurons against the Fourier circuit's neurons."""
    both = len(found & truth)
    nan = float("nan")
    return {
        "precision": both / len(found) if found else nan,
        "recall": both / len(truth) if truth else nan,
        "jaccard": both / len(found | truth) if found | truth else nan,
    }


def fourier_neurons(measures: pd.DataFrame, run_id: str, key_freqs: list[int], threshold: float):
    """Neurons of the run's final checkpoint that are single-frequency (explained >= threshold)
    at a key frequency: the key-frequency clusters of Nanda et al. (2023, Sec. 4.3)."""
    rows = measures[
        (measures.run_id == run_id) & measures.measure.isin(["neuron_freq", "neuron_explained"])
    ]
    if rows.empty:
        raise ValueError(f"no final neuron measures of run {run_id!r} in the circuits table")
    last = rows[rows.step == rows.step.max()].pivot(
        index="component", columns="measure", values="value"
    )
    chosen = last[(last.neuron_explained >= threshold) & last.neuron_freq.isin(key_freqs)]
    return {int(c) for c in chosen.index}


def over_training(run_dir: Path, truth: set[int], analysis: dict) -> pd.DataFrame:
    """One row per analysed checkpoint (every `checkpoint_stride`-th, and the last)."""
    from tqdm import tqdm

    found = run_checkpoints(Path(run_dir))
    chosen = found[:: analysis["checkpoint_stride"]]
    chosen += [] if chosen[-1] == found[-1] else [found[-1]]
    rows, sample = [], None
    for step, path in tqdm(chosen, desc=f"discovery {Path(run_dir).name}", mininterval=10):
        bridge, _, cfg = load_bridge(path)
        if sample is None:
            sample = pairs(cfg.p, analysis["n_pairs"], analysis["pair_seed"])
        result = circuit_at(
            NodeModel(bridge, *sample), analysis["faithfulness"], analysis["ig_steps"]
        )
        nodes = result.pop("nodes")
        neurons = {i for i in nodes if i < cfg.d_mlp} if nodes is not None else None
        stats = (
            overlap(neurons, truth)
            if neurons is not None
            else dict.fromkeys(("precision", "recall", "jaccard"), float("nan"))
        )
        n_neurons = len(neurons) if neurons is not None else float("nan")
        rows.append(
            {
                "step": step,
                **result,
                **stats,
                "n_neurons": n_neurons,
                "n_fourier": len(truth),
                "d_mlp": cfg.d_mlp,
            }
        )
    return pd.DataFrame(rows)


def discover(
    run_dir, run_id: str, key_freqs_path, measures_path, analysis: dict, threshold: float, out
) -> None:
    """The over-training job of one grokking run."""
    import json

    key_freqs = json.loads(Path(key_freqs_path).read_text())["key_frequencies"]
    truth = fourier_neurons(pd.read_parquet(measures_path), run_id, key_freqs, threshold)
    over_training(Path(run_dir), truth, analysis).to_parquet(out, index=False)
