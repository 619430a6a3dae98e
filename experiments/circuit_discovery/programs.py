"""The zoo's programs: RASP sources of the circuits the discovery methods must find.

`reverse` and `proportion` are the two tracr tasks of ACDC's ground-truth table (Conmy et al. 2023,
Table 2), written as in tracr's library (`make_reverse`, `make_frac_prevs`, Lindner et al. 2023);
`histogram` is tracr's `make_hist`; `previous_equal` (does each token equal the one before it?) is a
previous-token head feeding a comparison, the duplicate-token motif of the IOI circuit.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.circuit_discovery.rasp import (
    Aggregate,
    Indices,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    SOp,
    Tokens,
    infer_values,
)


@dataclass
class Program:
    name: str
    output: SOp
    vocab: tuple
    max_len: int


def reverse() -> SOp:
    tokens, indices = Tokens("tokens", "categorical"), Indices("indices", "categorical")
    length = SelectorWidth("length", "categorical", selector=Select(tokens, tokens, "TRUE"))
    opp_index = SequenceMap("opp_index", "categorical", (length, indices), f=lambda n, i: n - i)
    opp_index_1 = Map("opp_index-1", "categorical", (opp_index,), f=lambda x: x - 1)
    flip = Select(indices, opp_index_1, "EQ")
    return Aggregate("reverse", "categorical", (tokens,), selector=flip)


def proportion() -> SOp:
    """Share of the tokens so far (this one included) that are "x" (tracr's make_frac_prevs)."""
    tokens, indices = Tokens("tokens", "categorical"), Indices("indices", "categorical")
    is_x = Map("is_x", "numerical", (tokens,), f=lambda t: float(t == "x"))
    prevs = Select(indices, indices, "LEQ")
    return Aggregate("frac_prevs", "numerical", (is_x,), selector=prevs)


def histogram() -> SOp:
    """How often each position's token occurs in the sequence (tracr's make_hist)."""
    tokens = Tokens("tokens", "categorical")
    return SelectorWidth("hist", "categorical", selector=Select(tokens, tokens, "EQ"))


def previous_equal() -> SOp:
    """1 where a token equals the token before it, 0 elsewhere, None at the first position."""
    tokens, indices = Tokens("tokens", "categorical"), Indices("indices", "categorical")
    previous_index = Map("prev_index", "categorical", (indices,), f=lambda i: i - 1)
    previous = Aggregate(
        "prev_token", "categorical", (tokens,), selector=Select(indices, previous_index, "EQ")
    )
    return SequenceMap("prev_equal", "categorical", (tokens, previous), f=lambda t, p: int(t == p))


PROGRAMS = {
    "reverse": (reverse, (1, 2, 3)),
    "proportion": (proportion, ("w", "x", "y", "z")),
    "histogram": (histogram, ("a", "b", "c")),
    "previous_equal": (previous_equal, ("a", "b", "c")),
}
MAX_LEN = 5  # ACDC's tracr tasks: max_seq_len 5


def program(name: str, max_len: int = MAX_LEN) -> Program:
    if name not in PROGRAMS:
        raise ValueError(f"task {name!r} is not one of {sorted(PROGRAMS)}")
    build, vocab = PROGRAMS[name]
    output = build()
    infer_values(output, vocab, max_len)
    return Program(name, output, vocab, max_len)
