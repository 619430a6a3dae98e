"""The synthetic RLHF environment: base sampler, gold reward, preference pairs.

A sample is `prompt (2-4 tokens) SEP completion (1-20 tokens) EOS`, right-padded with PAD. The
completion is a Markov chain over `n_tokens` completion tokens whose start distribution depends
on the prompt's class (its first token mod `n_classes`). Token ids: completion tokens
0..n_tokens-1, prompt tokens next, then SEP, EOS, PAD.

The gold reward (known exactly) is
    sum_t value[class, tok_t]                         per-token values, depending on the prompt
  + bigram_bonus * #(occurrences of a few bigrams)    strong interactions
  - length_coef * (len - length_opt)^2                a length term that is not monotone
  - repeat_penalty * [some token occurs > repeat_limit times]
Each class has `n_star` "star" tokens worth `star_value` more than the rest. With `star_limit`
k > 0 a star's value counts for its first k uses in a completion only: every further use of that
star is worth -star_excess_cost instead (Goodhart's extremal case: the feature that predicts gold
on typical samples turns bad beyond a point that typical samples rarely reach). star_limit 0 keeps
every use at its value. Either the repetition penalty or the star limit, if rare under the base
sampler, is exploitable by best-of-n against a proxy that has not learned it.

Everything is numpy, deterministic given the seeds: the environment's tables come from
`EnvConfig.seed`, samples from the generator passed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from alignlab.config import dataclass_from


@dataclass(frozen=True)
class EnvConfig:
    n_prompt_tokens: int = 8
    n_classes: int = 4
    prompt_len_min: int = 2
    prompt_len_max: int = 4
    n_tokens: int = 64
    len_min: int = 1
    len_max: int = 20
    chain_alpha: float = 1.0
    self_transition: float = 0.02
    token_scale: float = 1.0
    n_star: int = 3
    star_value: float = 3.0
    n_bigrams: int = 8
    bigram_bonus: float = 2.0
    length_opt: float = 10.0
    length_coef: float = 0.05
    repeat_limit: int = 2
    repeat_penalty: float = 10.0
    star_limit: int = 0
    star_excess_cost: float = 0.0
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> EnvConfig:
        return dataclass_from(cls, d, "env keys")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def sep(self) -> int:
        return self.n_tokens + self.n_prompt_tokens

    @property
    def eos(self) -> int:
        return self.sep + 1

    @property
    def pad(self) -> int:
        return self.sep + 2

    @property
    def d_vocab(self) -> int:
        return self.sep + 3

    @property
    def n_ctx(self) -> int:
        return self.prompt_len_max + 1 + self.len_max + 1


@dataclass
class Batch:
    """Samples as arrays: prompt [n, prompt_len_max] (PAD-filled), completion [n, len_max]."""

    prompt: np.ndarray
    prompt_len: np.ndarray
    completion: np.ndarray
    completion_len: np.ndarray

    def __len__(self) -> int:
        return len(self.prompt_len)

    def take(self, idx) -> Batch:
        return Batch(
            self.prompt[idx], self.prompt_len[idx], self.completion[idx], self.completion_len[idx]
        )


class Env:
    """Tables of one environment (values, chain, bigrams) drawn from `cfg.seed`."""

    def __init__(self, cfg: EnvConfig):
        if not 0 <= cfg.self_transition < 1:
            raise ValueError(f"self_transition must be in [0, 1), got {cfg.self_transition}")
        self.cfg = cfg
        rng = np.random.default_rng([cfg.seed, 7_771])
        c, k = cfg.n_tokens, cfg.n_classes
        self.values = rng.standard_normal((k, c)) * cfg.token_scale
        # a few "star" tokens per class are worth much more: the best completions are the ones
        # that use them often, which the repetition penalty caps at repeat_limit each
        self.stars = np.empty((k, cfg.n_star), dtype=np.int64)
        for cls in range(k):
            stars = rng.choice(c, size=cfg.n_star, replace=False)
            self.values[cls, stars] += cfg.star_value
            self.stars[cls] = stars
        trans = rng.dirichlet(np.full(c, cfg.chain_alpha), size=c)
        np.fill_diagonal(trans, 0.0)
        trans = trans / trans.sum(1, keepdims=True) * (1 - cfg.self_transition)
        np.fill_diagonal(trans, cfg.self_transition)
        self.transition = trans
        self.start = rng.dirichlet(np.full(c, cfg.chain_alpha), size=k)
        # Bigrams (a, b) with a != b that the chain actually produces often enough to be learned
        # from data but rarely enough to be worth exploiting: drawn among transitions of mid
        # probability.
        flat = [(a, b) for a in range(c) for b in range(c) if a != b]
        order = rng.permutation(len(flat))
        self.bigrams = np.array([flat[i] for i in order[: cfg.n_bigrams]], dtype=np.int64)

    # ----- sampling -----------------------------------------------------------------------
    def sample_prompts(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        lens = rng.integers(cfg.prompt_len_min, cfg.prompt_len_max + 1, size=n)
        toks = rng.integers(0, cfg.n_prompt_tokens, size=(n, cfg.prompt_len_max))
        prompt = np.where(
            np.arange(cfg.prompt_len_max)[None] < lens[:, None], toks + cfg.n_tokens, cfg.pad
        )
        return prompt.astype(np.int64), lens.astype(np.int64)

    def prompt_class(self, prompt: np.ndarray, prompt_len: np.ndarray) -> np.ndarray:
        """The class of a prompt: its first token mod n_classes (the rest of it is noise)."""
        return (prompt[:, 0] - self.cfg.n_tokens) % self.cfg.n_classes

    def sample_completions(self, rng: np.random.Generator, prompt, prompt_len) -> Batch:
        """One base-sampler completion for each given prompt."""
        cfg = self.cfg
        n = len(prompt_len)
        cls = self.prompt_class(prompt, prompt_len)
        comp = np.empty((n, cfg.len_max), dtype=np.int64)
        comp[:, 0] = _inverse_cdf(np.cumsum(self.start, 1)[cls], rng.random(n))
        cum = np.cumsum(self.transition, 1)
        for t in range(1, cfg.len_max):
            comp[:, t] = _inverse_cdf(cum[comp[:, t - 1]], rng.random(n))
        lens = rng.integers(cfg.len_min, cfg.len_max + 1, size=n).astype(np.int64)
        return Batch(prompt, prompt_len, comp, lens)

    def sample(self, rng: np.random.Generator, n: int) -> Batch:
        return self.sample_completions(rng, *self.sample_prompts(rng, n))

    # ----- gold reward ---------------------------------------------------------------------
    def gold_parts(self, batch: Batch) -> dict[str, np.ndarray]:
        cfg = self.cfg
        n = len(batch)
        mask = np.arange(cfg.len_max)[None] < batch.completion_len[:, None]
        cls = self.prompt_class(batch.prompt, batch.prompt_len)
        per_use = self.values[cls[:, None], batch.completion]
        excess = np.zeros(n)
        if cfg.star_limit > 0:
            for j in range(cfg.n_star):
                is_star = (batch.completion == self.stars[cls, j][:, None]) & mask
                beyond = is_star & (np.cumsum(is_star, 1) > cfg.star_limit)
                per_use = np.where(beyond, -cfg.star_excess_cost, per_use)
                excess += beyond.sum(1)
        tok_values = np.where(mask, per_use, 0.0).sum(1)
        pair_mask = mask[:, 1:]
        bigram = np.zeros(n)
        for a, b in self.bigrams:
            hit = (batch.completion[:, :-1] == a) & (batch.completion[:, 1:] == b) & pair_mask
            bigram += hit.sum(1)
        length = -cfg.length_coef * (batch.completion_len - cfg.length_opt) ** 2
        rows = np.repeat(np.arange(n), cfg.len_max)[mask.ravel()]
        counts = np.bincount(
            rows * cfg.n_tokens + batch.completion.ravel()[mask.ravel()], minlength=n * cfg.n_tokens
        ).reshape(n, cfg.n_tokens)
        repeated = (counts > cfg.repeat_limit).any(1)
        return {
            "tokens": tok_values,
            "bigrams": cfg.bigram_bonus * bigram,
            "length": length,
            "repeat": -cfg.repeat_penalty * repeated,
            "repeated": repeated.astype(float),
            "star_excess": excess,  # uses of a star beyond star_limit (0 when uncapped)
        }

    def gold(self, batch: Batch) -> np.ndarray:
        parts = self.gold_parts(batch)
        return parts["tokens"] + parts["bigrams"] + parts["length"] + parts["repeat"]

    # ----- model inputs --------------------------------------------------------------------
    def tokens(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """([n, n_ctx] token ids `prompt SEP completion EOS PAD...`, [n] index of EOS)."""
        cfg = self.cfg
        n = len(batch)
        out = np.full((n, cfg.n_ctx), cfg.pad, dtype=np.int64)
        pos = np.arange(cfg.n_ctx)[None]
        pl, cl = batch.prompt_len[:, None], batch.completion_len[:, None]
        # prompt tokens sit at positions 0..pl-1 (the PAD-filled tail is overwritten below)
        out[:, : cfg.prompt_len_max] = batch.prompt
        out = np.where(pos == pl, cfg.sep, out)
        rel = pos - pl - 1
        comp = np.take_along_axis(batch.completion, np.clip(rel, 0, cfg.len_max - 1), axis=1)
        out = np.where((rel >= 0) & (rel < cl), comp, out)
        eos = (pl + 1 + cl)[:, 0]
        out = np.where(pos == eos[:, None], cfg.eos, out)
        out = np.where(pos > eos[:, None], cfg.pad, out)
        return out, eos


def _inverse_cdf(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum((u[:, None] > cum).sum(1), cum.shape[1] - 1)


# ----- preference pairs -------------------------------------------------------------------
LABELS = ("deterministic", "bradley_terry", "flip")


def make_pairs(
    env: Env,
    n_pairs: int,
    seed: int,
    label: str = "deterministic",
    temperature: float = 1.0,
    flip_rate: float = 0.0,
    length_bias: float = 0.0,
) -> dict[str, np.ndarray]:
    """`n_pairs` pairs (two base completions of one prompt), labelled by gold.

    label: deterministic (higher gold wins, ties at random), bradley_terry (a wins with
    probability sigmoid((gold_a - gold_b) / temperature)) or flip (deterministic, then each label
    flipped with probability flip_rate). length_bias: afterwards, with this probability a pair's
    label is set to "the longer completion wins" instead (pairs of equal length keep their label),
    so that longer completions win more often than gold alone implies (Singhal et al. 2023; the
    draw comes after every other one, so length_bias 0 leaves every output unchanged). Returns
    token arrays of the chosen and the rejected sample, their EOS indices and golds (both
    completions of a pair share the prompt, so the longer one has the larger EOS index). The
    data-size sweep takes prefixes of one such set (`alignlab.preference.train.split_pairs`), so
    its sizes are nested.
    """
    if label not in LABELS:
        raise ValueError(f"label {label!r} is not one of {LABELS}")
    rng = np.random.default_rng([seed, 1_234])
    prompt, plen = env.sample_prompts(rng, n_pairs)
    a = env.sample_completions(rng, prompt, plen)
    b = env.sample_completions(rng, prompt, plen)
    ga, gb = env.gold(a), env.gold(b)
    u = rng.random(n_pairs)
    tie = rng.random(n_pairs) < 0.5
    if label == "bradley_terry":
        a_wins = u < 1.0 / (1.0 + np.exp(-(ga - gb) / temperature))
    else:
        a_wins = np.where(ga == gb, tie, ga > gb)
        if label == "flip":
            a_wins = a_wins ^ (u < flip_rate)
    if not 0.0 <= length_bias <= 1.0:
        raise ValueError(f"length_bias must be in [0, 1], got {length_bias}")
    to_length = (rng.random(n_pairs) < length_bias) & (a.completion_len != b.completion_len)
    a_wins = np.where(to_length, a.completion_len > b.completion_len, a_wins)
    ta, ea = env.tokens(a)
    tb, eb = env.tokens(b)
    w = a_wins[:, None]
    return {
        "chosen": np.where(w, ta, tb),
        "chosen_eos": np.where(a_wins, ea, eb),
        "chosen_gold": np.where(a_wins, ga, gb),
        "rejected": np.where(w, tb, ta),
        "rejected_eos": np.where(a_wins, eb, ea),
        "rejected_gold": np.where(a_wins, gb, ga),
    }


def make_pool(env: Env, n_prompts: int, pool_size: int, seed: int) -> dict[str, np.ndarray]:
    """The best-of-n pool: `pool_size` base samples for each of `n_prompts` prompts."""
    rng = np.random.default_rng([seed, 4_321])
    prompt, plen = env.sample_prompts(rng, n_prompts)
    prompt_id = np.repeat(np.arange(n_prompts), pool_size)
    batch = env.sample_completions(rng, prompt[prompt_id], plen[prompt_id])
    tokens, eos = env.tokens(batch)
    parts = env.gold_parts(batch)
    return {
        "tokens": tokens.astype(np.uint8),
        "eos": eos,
        "prompt_id": prompt_id,
        "gold": env.gold(batch),
        "length": batch.completion_len,
        "repeated": parts["repeated"],
        "star_excess": parts["star_excess"],
    }
