"""Shared test settings (every test folder: tests/ and experiments/*/tests/): one torch thread
(CI has 2 cores) and small deterministic models."""

import pytest
import torch

torch.set_num_threads(1)
torch.set_flush_denormal(True)


@pytest.fixture
def tiny_run() -> dict:
    """A flat grokking run config small enough to train in a second or two."""
    return {
        "p": 13,
        "op": "add",
        "frac_train": 0.5,
        "data_seed": 0,
        "seed": 0,
        "steps": 60,
        "d_model": 16,
        "n_heads": 2,
        "d_head": 8,
        "d_mlp": 32,
        "act_fn": "relu",
        "lr": 1e-2,
        "weight_decay": 1.0,
        "betas": [0.9, 0.98],
        "warmup_steps": 5,
        "checkpoint_spacing": "linear",
        "checkpoint_every": 10,
        "compile": False,
        "device": "cpu",
    }
