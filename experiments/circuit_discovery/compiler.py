"""Compile a RASP program (rasp.py) to TransformerLens-named weights with a known circuit.

The construction is tracr's (Lindner et al. 2023, Sec. 3): the residual stream is a direct sum of
one-hot subspaces, one dimension per (SOp, value) (one per numerical SOp); the input is
[BOS, t_1 .. t_n]; attention is bidirectional.
- Select + Aggregate is one head. The query reads the query SOp, the key reads the key SOp; the
  score is SOFTNESS where the predicate holds, and the BOS position scores half that (the full
  value for SelectorWidth), through a query bias, so that a query with no match reads BOS, whose
  value is empty (tracr's default). The value copies the aggregated SOp into the output's subspace.
- SelectorWidth is tracr's: a head where BOS scores like a match writes 1 / (w + 1), and an MLP
  turns that number back into the categorical width w with pairs of steep ReLUs.
- Map and SequenceMap are MLP lookup tables: one hidden neuron per input value (per pair of
  values, with bias -1, for SequenceMap) writing the one-hot of f.
Every op gets its own sublayer, the earliest after all it reads; one head per layer, so that each
head's query, key and value inputs are separate hook points of the bridge (blocks.L.attn.q.hook_in,
...). The ground-truth circuit is the set of edges (writer -> reader input) along which the program
passes an SOp: a reader's input whose subspace a writer never touches is not an edge of the circuit,
and zero-ablating it changes nothing (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from experiments.circuit_discovery.programs import Program
from experiments.circuit_discovery.rasp import (
    PREDICATES,
    Aggregate,
    Map,
    SelectorWidth,
    SequenceMap,
    SOp,
    topological,
)

SOFTNESS = 100.0  # attention score of a match (tracr's default causal_softmax_coldness)
BOS = "BOS"


@dataclass(frozen=True)
class CompiledConfig:
    """The fields `alignlab.bridge.bridge_config` and `alignlab.transformer` read, plus tracr's
    bidirectional attention."""

    d_vocab: int
    d_vocab_out: int
    n_ctx: int
    d_model: int
    n_layers: int
    d_head: int
    d_mlp: int
    n_heads: int = 1
    act_fn: str = "relu"
    normalization: str = "none"
    attention_dir: str = "bidirectional"


@dataclass
class Compiled:
    program: Program
    cfg: CompiledConfig
    params: dict[str, torch.Tensor]
    labels: list[str]  # residual dimension names, "sop:value" or "sop"
    circuit: set[tuple[str, str]]  # ground truth (source node, destination input)
    placement: dict[str, str] = field(default_factory=dict)  # op name -> node ("a1", "m0")

    @property
    def numerical(self) -> bool:
        return self.program.output.kind == "numerical"

    def token_ids(self, sequences: list[tuple]) -> torch.Tensor:
        """[batch, 1 + n] token ids with BOS (id 0) first; the vocabulary is ids 1.."""
        ids = {t: i + 1 for i, t in enumerate(self.program.vocab)}
        return torch.tensor([[0] + [ids[t] for t in seq] for seq in sequences])


@dataclass
class _Op:
    """One sublayer's job: a head ("a") or an MLP ("m") computing `sop`."""

    kind: str
    sop: SOp
    node: str = ""

    @property
    def writes(self) -> str:
        """The SOp name whose subspace this op writes ("name.frac" for a width's head)."""
        return f"{self.sop.name}.frac" if self.is_width_head else self.sop.name

    @property
    def is_width_head(self) -> bool:
        return self.kind == "a" and isinstance(self.sop, SelectorWidth)

    def reads(self) -> dict[str, list[str]]:
        """Input (q / k / v of a head; "in" of an MLP) -> the SOp names it reads."""
        sop = self.sop
        if self.kind == "m":
            if isinstance(sop, SelectorWidth):
                return {"in": [f"{sop.name}.frac"]}
            return {"in": [p.name for p in sop.inputs]}
        selector = sop.selector
        value = "tokens" if isinstance(sop, SelectorWidth) else sop.inputs[0].name
        if selector.predicate == "TRUE":  # constant scores: uniform attention reads nothing
            return {"q": [], "k": [], "v": [value]}
        # the key also reads BOS's token dimension, which belongs to `tokens`
        return {"q": [selector.queries.name], "k": [selector.keys.name, "tokens"], "v": [value]}


def _ops(output: SOp) -> list[_Op]:
    ops = []
    for sop in topological(output):
        if isinstance(sop, (Aggregate, SelectorWidth)):
            ops.append(_Op("a", sop))
        if isinstance(sop, (Map, SequenceMap, SelectorWidth)):
            ops.append(_Op("m", sop))
    return ops


def _schedule(ops: list[_Op]) -> int:
    """Give each op its node ("a{layer}" / "m{layer}"): the earliest free sublayer of its kind
    after every op it reads (sublayer 2 * layer is the head, 2 * layer + 1 the MLP). Returns the
    number of layers."""
    done: dict[str, int] = {"tokens": -1, "indices": -1}  # SOp name -> sublayer writing it
    taken: set[int] = set()
    for op in ops:
        needed = [name for names in op.reads().values() for name in names]
        slot = max((done[name] for name in needed), default=-1) + 1
        slot += slot % 2 != (op.kind == "m")  # heads on even sublayers, MLPs on odd
        while slot in taken:
            slot += 2
        taken.add(slot)
        done[op.writes] = slot
        op.node = f"{op.kind}{slot // 2}"
    return max(taken) // 2 + 1


def _labels(program: Program, ops: list[_Op]) -> list[str]:
    labels = [f"tokens:{v}" for v in program.vocab] + [f"tokens:{BOS}"]
    labels += [f"indices:{i}" for i in range(program.max_len)]
    for op in ops:
        if op.is_width_head or op.sop.kind == "numerical":
            labels.append(op.writes)
        elif op.kind == "m" or isinstance(op.sop, Aggregate):
            labels += [f"{op.sop.name}:{v}" for v in op.sop.values]
    return labels


def _dims(index: dict[str, int], sop: SOp) -> list[int]:
    """Residual dimensions of `sop`: one per value, or its one numerical dimension."""
    if sop.kind == "numerical":
        return [index[sop.name]]
    return [index[f"{sop.name}:{v}"] for v in sop.values]


def ground_truth(ops: list[_Op], output: SOp) -> set[tuple[str, str]]:
    """Edges (source node, destination input) along which the program passes an SOp."""
    writer = {"tokens": "embed", "indices": "embed"} | {op.writes: op.node for op in ops}
    edges = set()
    for op in ops:
        for port, names in op.reads().items():
            destination = op.node if port == "in" else f"{op.node}.{port}"
            edges |= {(writer[name], destination) for name in names}
    edges.add((writer[output.name], "out"))
    return edges


def compile_program(program: Program) -> Compiled:
    """The program as float32 weights under TransformerLens names, with its ground truth."""
    ops = _ops(program.output)
    n_layers = _schedule(ops)
    labels = _labels(program, ops)
    out = program.output
    d_vocab_out = 1 if out.kind == "numerical" else len(out.values)
    d_head = (
        max(_head_width(op) for op in ops if op.kind == "a")
        if any(op.kind == "a" for op in ops)
        else 1
    )
    cfg = CompiledConfig(
        d_vocab=len(program.vocab) + 1,
        d_vocab_out=d_vocab_out,
        n_ctx=program.max_len + 1,
        d_model=len(labels),
        n_layers=n_layers,
        d_head=d_head,
        d_mlp=max([_mlp_width(op) for op in ops if op.kind == "m"], default=1),
    )
    params = _empty_params(cfg)
    index = {label: i for i, label in enumerate(labels)}
    _embed(params, program, labels)
    for op in ops:
        layer = int(op.node[1:])
        if op.kind == "a":
            _head(params[f"blocks.{layer}.attn"], op, index, cfg.d_head)
        else:
            _mlp(params[f"blocks.{layer}.mlp"], op, index)
    for i, dim in enumerate(_dims(index, out)):
        params["unembed"]["W_U"][dim, i] = 1.0
    flat = {f"{module}.{name}": t for module, group in params.items() for name, t in group.items()}
    return Compiled(
        program,
        cfg,
        flat,
        labels,
        ground_truth(ops, out),
        {op.writes: op.node for op in ops},
    )


def _head_width(op: _Op) -> int:
    """Head dimensions: one per query value plus the BOS score, and one per value carried."""
    values = 1 if op.is_width_head or op.sop.kind == "numerical" else len(op.sop.values)
    return max(len(op.sop.selector.queries.values) + 1, values)


def _mlp_width(op: _Op) -> int:
    sop = op.sop
    if isinstance(sop, SelectorWidth):
        return 2 * (len(sop.values) - 1)
    if isinstance(sop, SequenceMap):
        return len(sop.inputs[0].values) * len(sop.inputs[1].values)
    return len(sop.inputs[0].values)


def _empty_params(cfg: CompiledConfig) -> dict[str, dict[str, torch.Tensor]]:
    m, h, dh, mlp = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    z = torch.zeros
    params = {
        "embed": {"W_E": z(cfg.d_vocab, m)},
        "pos_embed": {"W_pos": z(cfg.n_ctx, m)},
        "unembed": {"W_U": z(m, cfg.d_vocab_out), "b_U": z(cfg.d_vocab_out)},
    }
    for layer in range(cfg.n_layers):
        params[f"blocks.{layer}.attn"] = {
            **{f"W_{x}": z(h, m, dh) for x in "QKV"},
            **{f"b_{x}": z(h, dh) for x in "QKV"},
            "W_O": z(h, dh, m),
            "b_O": z(m),
        }
        params[f"blocks.{layer}.mlp"] = {
            "W_in": z(m, mlp),
            "b_in": z(mlp),
            "W_out": z(mlp, m),
            "b_out": z(m),
        }
    return params


def _embed(params, program: Program, labels: list[str]) -> None:
    index = {label: i for i, label in enumerate(labels)}
    params["embed"]["W_E"][0, index[f"tokens:{BOS}"]] = 1.0
    for i, token in enumerate(program.vocab):
        params["embed"]["W_E"][i + 1, index[f"tokens:{token}"]] = 1.0
    for position in range(program.max_len):  # position 0 is BOS, which has no index
        params["pos_embed"]["W_pos"][position + 1, index[f"indices:{position}"]] = 1.0


def _head(attn, op: _Op, index: dict[str, int], d_head: int) -> None:
    """Select + Aggregate (or a width's head): scores SOFTNESS x predicate, BOS through b_Q."""
    sop, selector = op.sop, op.sop.selector
    if selector.predicate == "TRUE" and not op.is_width_head:
        raise ValueError(f"{sop.name!r}: a TRUE selector is compiled for SelectorWidth only")
    if selector.predicate != "TRUE":  # TRUE: all scores 0, uniform over BOS and every token
        _scores(attn, op, index, d_head)
    _values(attn, op, index)


def _scores(attn, op: _Op, index: dict[str, int], d_head: int) -> None:
    selector = op.sop.selector
    queries, keys = selector.queries.values, selector.keys.values
    scale = math.sqrt(d_head)  # TransformerLens divides scores by sqrt(d_head)
    bos_score = SOFTNESS if op.is_width_head else SOFTNESS / 2
    test = PREDICATES[selector.predicate]
    for a, (query, q_dim) in enumerate(zip(queries, _dims(index, selector.queries), strict=True)):
        attn["W_Q"][0, q_dim, a] = 1.0
        for key, k_dim in zip(keys, _dims(index, selector.keys), strict=True):
            attn["W_K"][0, k_dim, a] = SOFTNESS * scale * float(test(key, query))
    attn["b_Q"][0, len(queries)] = 1.0
    attn["W_K"][0, index[f"tokens:{BOS}"], len(queries)] = bos_score * scale


def _values(attn, op: _Op, index: dict[str, int]) -> None:
    sop = op.sop
    if op.is_width_head:  # the share of attention on BOS, 1 / (width + 1)
        attn["W_V"][0, index[f"tokens:{BOS}"], 0] = 1.0
        attn["W_O"][0, 0, index[op.writes]] = 1.0
        return
    for j, (source, target) in enumerate(
        zip(_dims(index, sop.inputs[0]), _dims(index, sop), strict=True)
    ):
        attn["W_V"][0, source, j] = 1.0
        attn["W_O"][0, j, target] = 1.0


def _mlp(mlp, op: _Op, index: dict[str, int]) -> None:
    sop = op.sop
    if isinstance(sop, SelectorWidth):
        _width_mlp(mlp, sop, index[f"{sop.name}.frac"], _dims(index, sop))
        return
    out_index = {v: d for v, d in zip(sop.values, _dims(index, sop), strict=False)}
    if isinstance(sop, SequenceMap):
        (x, y), n = sop.inputs, 0
        for xv, x_dim in zip(x.values, _dims(index, x), strict=True):
            for yv, y_dim in zip(y.values, _dims(index, y), strict=True):
                mlp["W_in"][x_dim, n] = mlp["W_in"][y_dim, n] = 1.0
                mlp["b_in"][n] = -1.0  # on only when both values are present
                mlp["W_out"][n, out_index[sop.f(xv, yv)]] = 1.0
                n += 1
        return
    x = sop.inputs[0]
    for n, (xv, x_dim) in enumerate(zip(x.values, _dims(index, x), strict=True)):
        mlp["W_in"][x_dim, n] = 1.0
        if sop.kind == "numerical":
            mlp["W_out"][n, index[sop.name]] = float(sop.f(xv))
        else:
            mlp["W_out"][n, out_index[sop.f(xv)]] = 1.0


def _width_mlp(mlp, sop: SelectorWidth, frac_dim: int, out_dims: list[int]) -> None:
    """1 / (w + 1) -> one-hot w. Sorted ascending, x_k = 1 / (w_k + 1); a step s_j rises from 0 to 1
    across the midpoint t_j between x_(j-1) and x_j (two ReLUs of slope `steep`), and bucket k is
    1 - s_1, s_k - s_(k+1) or s_(m-1): exact wherever x is within gap / 20 of a value."""
    widths = sorted(sop.values, key=lambda w: 1.0 / (w + 1))
    xs = [1.0 / (w + 1) for w in widths]
    steep = 10.0 / min(b - a for a, b in zip(xs, xs[1:], strict=False))
    out = dict(zip(sop.values, out_dims, strict=True))
    for j in range(1, len(xs)):
        t = (xs[j - 1] + xs[j]) / 2
        for n, offset, sign in ((2 * (j - 1), 0.5, 1.0), (2 * (j - 1) + 1, -0.5, -1.0)):
            mlp["W_in"][frac_dim, n] = steep
            mlp["b_in"][n] = -steep * t + offset
            mlp["W_out"][n, out[widths[j]]] += sign
            mlp["W_out"][n, out[widths[j - 1]]] -= sign
    mlp["b_out"][out[widths[0]]] = 1.0
