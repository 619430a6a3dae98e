"""A small RASP (Weiss et al. 2021) with the operations tracr (Lindner et al. 2023) compiles.

A program is a graph of sequence operations (SOps) over the input tokens. Each SOp is categorical
(one value from a finite set per position) or numerical (one number per position), and evaluates
here in plain Python, position by position: this evaluation is the ground truth the compiled
models (compiler.py) are tested against on every input of their domain.

Operations, as in tracr's RASP:
- `tokens`, `indices`: the input and the positions (0 for the first token after BOS);
- `Map(f, x)`: f applied at each position (categorical or numerical output);
- `SequenceMap(f, x, y)`: f of two categorical SOps at each position;
- `Select(keys, queries, predicate)` and `Aggregate(selector, x)`: each query position takes x at
  the key positions whose (key, query) satisfies the predicate: categorical (exactly one selected
  key; none gives None) or numerical (the mean; none gives 0);
- `SelectorWidth(selector)`: the number of selected keys.
`None` is "no value" (tracr's default), e.g. an aggregate that selects nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PREDICATES: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda key, query: key == query,
    "LT": lambda key, query: key < query,
    "LEQ": lambda key, query: key <= query,
    "TRUE": lambda key, query: True,
}


@dataclass(eq=False)
class SOp:
    """A sequence operation: `name`, its kind, its inputs and (once known) its value set."""

    name: str
    kind: str  # "categorical" or "numerical"
    inputs: tuple[SOp, ...] = ()
    values: tuple = field(default=(), repr=False)

    def evaluate(self, tokens: Sequence, cache: dict) -> list:
        raise NotImplementedError


@dataclass(eq=False)
class Tokens(SOp):
    def evaluate(self, tokens, cache):
        return list(tokens)


@dataclass(eq=False)
class Indices(SOp):
    def evaluate(self, tokens, cache):
        return list(range(len(tokens)))


@dataclass(eq=False)
class Map(SOp):
    f: Callable = None

    def evaluate(self, tokens, cache):
        return [None if x is None else self.f(x) for x in run(self.inputs[0], tokens, cache)]


@dataclass(eq=False)
class SequenceMap(SOp):
    f: Callable = None

    def evaluate(self, tokens, cache):
        xs, ys = (run(sop, tokens, cache) for sop in self.inputs)
        return [
            None if x is None or y is None else self.f(x, y) for x, y in zip(xs, ys, strict=True)
        ]


@dataclass(eq=False)
class Select:
    """Which key positions each query position reads: predicate(key value, query value)."""

    keys: SOp
    queries: SOp
    predicate: str

    def __post_init__(self):
        if self.predicate not in PREDICATES:
            raise ValueError(f"predicate {self.predicate!r} is not one of {sorted(PREDICATES)}")
        if self.keys.kind != "categorical" or self.queries.kind != "categorical":
            raise ValueError("Select compares categorical SOps (keys and queries)")

    def matrix(self, tokens, cache) -> list[list[bool]]:
        keys, queries = run(self.keys, tokens, cache), run(self.queries, tokens, cache)
        test = PREDICATES[self.predicate]
        return [[k is not None and q is not None and test(k, q) for k in keys] for q in queries]


@dataclass(eq=False)
class Aggregate(SOp):
    selector: Select = None

    def evaluate(self, tokens, cache):
        values = run(self.inputs[0], tokens, cache)
        out = []
        for row in self.selector.matrix(tokens, cache):
            chosen = [v for v, on in zip(values, row, strict=True) if on]
            if self.kind == "numerical":
                out.append(sum(chosen) / len(chosen) if chosen else 0.0)
            elif len(chosen) > 1:
                raise ValueError(f"categorical aggregate {self.name!r} selected {len(chosen)} keys")
            else:
                out.append(chosen[0] if chosen else None)
        return out


@dataclass(eq=False)
class SelectorWidth(SOp):
    selector: Select = None

    def evaluate(self, tokens, cache):
        return [sum(row) for row in self.selector.matrix(tokens, cache)]


def run(sop: SOp, tokens: Sequence, cache: dict | None = None) -> list:
    """The value of `sop` at every position of `tokens` (memoised per program run)."""
    cache = {} if cache is None else cache
    if id(sop) not in cache:
        cache[id(sop)] = sop.evaluate(tokens, cache)
    return cache[id(sop)]


def parents(sop: SOp) -> list[SOp]:
    """The SOps `sop` reads directly (a selector's keys and queries included)."""
    extra = [sop.selector.keys, sop.selector.queries] if hasattr(sop, "selector") else []
    return list(sop.inputs) + [p for p in extra if p not in sop.inputs]


def topological(output: SOp) -> list[SOp]:
    """Every SOp the output depends on, inputs before the SOps that read them."""
    order: list[SOp] = []

    def visit(sop: SOp) -> None:
        if sop not in order:
            for parent in parents(sop):
                visit(parent)
            order.append(sop)

    visit(output)
    return order


def infer_values(output: SOp, vocab: Sequence, max_len: int) -> None:
    """Fill every SOp's value set as tracr does: f over the product of its inputs' value sets."""
    for sop in topological(output):
        if isinstance(sop, Tokens):
            sop.values = tuple(sorted(vocab))
        elif isinstance(sop, Indices):
            sop.values = tuple(range(max_len))
        elif isinstance(sop, SelectorWidth):
            sop.values = tuple(range(max_len + 1))
        elif isinstance(sop, Aggregate):
            sop.values = sop.inputs[0].values if sop.kind == "categorical" else ()
        elif isinstance(sop, Map):
            sop.values = tuple(sorted({sop.f(x) for x in sop.inputs[0].values}))
        elif isinstance(sop, SequenceMap):
            xs, ys = (p.values for p in sop.inputs)
            sop.values = tuple(sorted({sop.f(x, y) for x in xs for y in ys}))
