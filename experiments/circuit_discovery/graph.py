"""The computational graph of a one-head-per-layer model over the bridge's hooks, and the edge-
patched forward every discovery method runs.

Nodes are the embedding (token + position: `blocks.0.hook_resid_pre`), each head
(`blocks.L.hook_attn_out`) and each MLP (`blocks.L.hook_mlp_out`). An edge (source, destination)
joins a node to an input that reads the residual stream after it: a head's query, key or value
(`blocks.L.attn.{q,k,v}.hook_in`), an MLP's input (`blocks.L.mlp.hook_in`) or the unembedding
(`unembed.hook_in`), as in ACDC (Conmy et al. 2023). The residual stream is the sum of the nodes'
outputs, so ablating the edge (u, d) adds corrupted(u) - u to d's input and to nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

PORTS = ("q", "k", "v")


@dataclass(frozen=True)
class Graph:
    n_layers: int

    @property
    def sources(self) -> list[str]:
        return ["embed"] + [f"{kind}{layer}" for layer in range(self.n_layers) for kind in "am"]

    @property
    def destinations(self) -> list[str]:
        """Every input, in forward order."""
        per_layer = [
            [f"a{layer}.{p}" for p in PORTS] + [f"m{layer}"] for layer in range(self.n_layers)
        ]
        return [d for group in per_layer for d in group] + ["out"]

    def upstream(self, destination: str) -> list[str]:
        """The nodes whose outputs `destination` reads (everything written before it)."""
        if destination == "out":
            return self.sources
        kind, layer = destination[0], int(destination.split(".")[0][1:])
        before = 2 * layer + (kind == "m")  # sublayers before this one
        return self.sources[: 1 + before]

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(u, d) for d in self.destinations for u in self.upstream(d)]

    @staticmethod
    def node_of(destination: str) -> str:
        return destination.split(".")[0]


def source_hook(node: str) -> str:
    if node == "embed":
        return "blocks.0.hook_resid_pre"
    kind, layer = node[0], int(node[1:])
    return f"blocks.{layer}.hook_{'attn' if kind == 'a' else 'mlp'}_out"


def destination_hook(destination: str) -> str:
    if destination == "out":
        return "unembed.hook_in"
    node, _, port = destination.partition(".")
    layer = int(node[1:])
    return f"blocks.{layer}.attn.{port}.hook_in" if port else f"blocks.{layer}.mlp.hook_in"


def check_graph(bridge, graph: Graph) -> None:
    cfg = bridge.cfg
    if cfg.n_heads != 1 or cfg.n_layers != graph.n_layers:
        raise ValueError(
            f"edge graphs need one head per layer and {graph.n_layers} layers: got n_heads="
            f"{cfg.n_heads}, n_layers={cfg.n_layers}"
        )


def patched_forward(
    bridge,
    graph: Graph,
    tokens: torch.Tensor,
    corrupted: dict[str, torch.Tensor] | None = None,
    ablated: Iterable[tuple[str, str]] = (),
    deltas: dict[str, torch.Tensor] | None = None,
    embed: torch.Tensor | None = None,
    record: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Logits with every edge in `ablated` reading `corrupted[source]` instead of the source.

    `deltas[d]` is added to input d (zeros that require grad give d(metric)/d(input d));
    `embed` replaces the embedding node's output (EAP-IG's interpolation); `record` receives
    every node's output in this run."""
    check_graph(bridge, graph)
    current = {} if record is None else record
    into: dict[str, list[str]] = {}
    for u, d in ablated:
        into.setdefault(d, []).append(u)

    def keep(node):
        def hook(x, hook):
            x = embed if node == "embed" and embed is not None else x
            current[node] = x
            return x

        return hook

    def feed(destination):
        def hook(x, hook):
            for u in into.get(destination, ()):
                x = x + (corrupted[u] - current[u])
            if deltas is not None and destination in deltas:
                x = x + deltas[destination]
            return x

        return hook

    hooks = [(source_hook(n), keep(n)) for n in graph.sources]
    hooks += [(destination_hook(d), feed(d)) for d in graph.destinations]
    return bridge.run_with_hooks(tokens, fwd_hooks=hooks)


def node_outputs(bridge, graph: Graph, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every node's output on `tokens` (no patching)."""
    record: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        patched_forward(bridge, graph, tokens, record=record)
    return {k: v.detach() for k, v in record.items()}
