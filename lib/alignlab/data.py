"""Modular-arithmetic datasets: every pair (a, b) of an operation mod p, split by seed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def _inverse(b: np.ndarray, p: int) -> np.ndarray:
    return np.array([pow(int(x), -1, p) for x in b], dtype=np.int64)


# Power et al. 2022's operations, by the names used in configs. The flag says whether the
# operation is undefined at b = 0 (division), so those pairs are left out.
OPERATIONS: dict[str, tuple[Callable[[np.ndarray, np.ndarray, int], np.ndarray], bool]] = {
    "add": (lambda a, b, p: (a + b) % p, False),
    "sub": (lambda a, b, p: (a - b) % p, False),
    "div": (lambda a, b, p: (a * _inverse(b, p)) % p, True),
    "div_if_odd_else_sub": (
        lambda a, b, p: np.where(b % 2 == 1, (a * _inverse(np.maximum(b, 1), p)) % p, (a - b) % p),
        True,
    ),
    "x2_plus_y2": (lambda a, b, p: (a * a + b * b) % p, False),
    "x2_plus_xy_plus_y2": (lambda a, b, p: (a * a + a * b + b * b) % p, False),
    "x2_plus_xy_plus_y2_plus_x": (lambda a, b, p: (a * a + a * b + b * b + a) % p, False),
    "x3_plus_xy": (lambda a, b, p: (a**3 + a * b) % p, False),
    "x3_plus_xy2_plus_y": (lambda a, b, p: (a**3 + a * b * b + b) % p, False),
}


@dataclass(frozen=True)
class ModularDataset:
    """All pairs of one operation, with a fixed train/test split. Tensors are int64 [n_pairs]."""

    p: int
    op: str
    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    is_train: torch.Tensor  # bool

    def split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = self.is_train if train else ~self.is_train
        return self.a[mask], self.b[mask], self.c[mask]


def build_dataset(p: int, op: str, frac_train: float, seed: int) -> ModularDataset:
    """Every (a, b) pair, labels c = op(a, b) mod p, and int(frac_train * n) pairs for training.

    The split is a permutation drawn from numpy's PCG64 seeded by `seed`, so it is the same on
    every machine and independent of torch's RNG.
    """
    if op not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r}; known: {sorted(OPERATIONS)}")
    fn, skip_zero_b = OPERATIONS[op]
    a, b = (x.ravel() for x in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if skip_zero_b:
        keep = b != 0
        a, b = a[keep], b[keep]
    c = fn(a, b, p)
    n_train = int(frac_train * len(a))
    order = np.random.default_rng(seed).permutation(len(a))
    is_train = np.zeros(len(a), dtype=bool)
    is_train[order[:n_train]] = True
    as_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))  # noqa: E731
    return ModularDataset(
        p, op, as_tensor(a), as_tensor(b), as_tensor(c), torch.from_numpy(is_train)
    )


def save_dataset(ds: ModularDataset, path: Path) -> None:
    frame = pd.DataFrame(
        {"a": ds.a.numpy(), "b": ds.b.numpy(), "c": ds.c.numpy(), "is_train": ds.is_train.numpy()}
    )
    frame.attrs = {"p": ds.p, "op": ds.op}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def load_dataset(path: Path) -> ModularDataset:
    frame = pd.read_parquet(path)
    p, op = int(frame.attrs["p"]), str(frame.attrs["op"])
    col = lambda name: torch.from_numpy(frame[name].to_numpy(copy=True))  # noqa: E731
    return ModularDataset(p, op, col("a"), col("b"), col("c"), col("is_train"))
