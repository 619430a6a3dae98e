"""Reward models trained stacked (alignlab.preference.stacked) are the runs trained alone: the
same logs and weights (float64), the same files in each run's folder, and exact resume."""

import hashlib
from pathlib import Path

import pytest
import torch

from alignlab import checkpoints as ckpt
from alignlab import loop
from alignlab.preference.env import Env, EnvConfig, make_pairs
from alignlab.preference.model import RewardModel, RMConfig, init_params
from alignlab.preference.stacked import StackedRMTrainer, check_stackable, train_stacked_rms
from alignlab.preference.train import split_pairs, train_rm

ENV = EnvConfig()
CFG = RMConfig(d_vocab=ENV.d_vocab, n_ctx=ENV.n_ctx, d_model=8, n_layers=2, n_heads=2, d_mlp=16)
# 96 training pairs in batches of 16: 6 steps an epoch, so 14 steps reshuffle twice
RUN = {"n_pairs": 120, "heldout_frac": 0.2, "min_steps": 14, "epochs": 1, "batch_size": 16,
       "n_evals": 4, "lr": 3e-3, "weight_decay": 0.01}  # fmt: skip
SEEDS = [3, 4, 5]
CPU = torch.device("cpu")


class Interrupted(Exception):
    pass


def _runs():
    return [{**RUN, "seed": seed} for seed in SEEDS]


def _pairs():  # each run its own pairs (the sweeps' seeds); an ensemble's members share theirs
    return [make_pairs(Env(ENV), RUN["n_pairs"], seed=seed) for seed in SEEDS]


def _files(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_stacked_runs_are_the_runs_trained_alone(tmp_path, float64):
    runs, pairs = _runs(), _pairs()
    alone = [train_rm(run, CFG, p, tmp_path / f"alone{k}", CPU)
             for k, (run, p) in enumerate(zip(runs, pairs, strict=True))]  # fmt: skip
    dirs = [tmp_path / f"run{k}" for k in range(len(runs))]
    stacked = train_stacked_rms(runs, CFG, pairs, tmp_path / "group", dirs, CPU)
    for k, ((model, rows), (s_model, s_rows)) in enumerate(zip(alone, stacked, strict=True)):
        assert [(r["step"], r["measure"]) for r in s_rows] == [
            (r["step"], r["measure"]) for r in rows
        ]
        for r, s in zip(rows, s_rows, strict=True):
            assert s["value"] == pytest.approx(r["value"], rel=1e-9, abs=1e-12), (k, r)
        start = init_params(CFG, runs[k]["seed"])
        for name, value in model.params().items():
            if name != "ln_final.b":  # the pairwise loss cancels its gradient: it never moves
                assert (value - start[name]).abs().max() > 1e-4, name  # training moved it
            torch.testing.assert_close(s_model.params()[name], value, rtol=0, atol=1e-10)
        # the run's folder holds its weights at its evaluation steps, as if it trained alone
        saved = ckpt.list_checkpoints(dirs[k] / "checkpoints")
        assert [s for s, _ in saved] == [s for s, _ in ckpt.list_checkpoints(
            tmp_path / f"alone{k}" / "checkpoints")]  # fmt: skip
        weights, step, config = ckpt.load_weights(saved[-1][1])
        assert step == 14 and config == CFG.to_dict()
        for name, value in weights.items():
            torch.testing.assert_close(value, model.params()[name], rtol=0, atol=1e-10)
    assert ckpt.list_checkpoints(tmp_path / "group" / "checkpoints") == []  # split, then removed


def test_a_stacked_group_stopped_midway_resumes_to_identical_results(tmp_path, monkeypatch):
    runs, pairs = _runs(), _pairs()
    whole_dirs = [tmp_path / f"whole{k}" for k in range(len(runs))]
    whole = train_stacked_rms(runs, CFG, pairs, tmp_path / "whole_group", whole_dirs, CPU)
    step = StackedRMTrainer.step

    def stop_at_9(self, n):
        if n == 9:
            raise Interrupted(n)
        step(self, n)

    cut_dirs = [tmp_path / f"cut{k}" for k in range(len(runs))]
    monkeypatch.setattr(StackedRMTrainer, "step", stop_at_9)
    with pytest.raises(Interrupted):
        train_stacked_rms(runs, CFG, pairs, tmp_path / "cut_group", cut_dirs, CPU)
    monkeypatch.setattr(StackedRMTrainer, "step", step)
    assert 0 < ckpt.load_resume(tmp_path / "cut_group" / loop.RESUME_FILE)[1] <= 9
    resumed = train_stacked_rms(runs, CFG, pairs, tmp_path / "cut_group", cut_dirs, CPU)
    for (model, rows), (r_model, r_rows), w_dir, c_dir in zip(
        whole, resumed, whole_dirs, cut_dirs, strict=True
    ):
        assert r_rows == rows
        for name, value in model.params().items():
            assert torch.equal(value, r_model.params()[name])
        assert _files(c_dir) == _files(w_dir)


@pytest.mark.parametrize(("key", "value"), [("lr", 1e-3), ("d_model", 16), ("n_pairs", 60)])
def test_runs_that_do_not_share_the_step_are_refused_naming_the_key(key, value):
    runs = [{**RUN, "d_model": 8, "seed": 0}, {**RUN, "d_model": 8, "seed": 1, key: value}]
    with pytest.raises(ValueError, match=f"must share {key}"):
        check_stackable(runs)


def test_the_rm_runs_on_other_weights_through_functional_call():
    """The stacked step runs one `RewardModel` on each run's weights through functional_call:
    `p()` reads attributes, so the weights given are the ones used."""
    model = RewardModel(CFG, init_params(CFG, 0))
    other = init_params(CFG, 1)
    tokens = torch.randint(0, CFG.d_vocab, (4, 6))
    eos = torch.tensor([5, 3, 4, 5])
    swapped = torch.func.functional_call(model, other, (tokens, eos))
    torch.testing.assert_close(swapped, RewardModel(CFG, other)(tokens, eos), rtol=0, atol=0)


def test_a_diverged_run_is_named_by_its_seed():
    runs, pairs = _runs(), _pairs()
    splits = [split_pairs(p, RUN["n_pairs"], RUN["heldout_frac"]) for p in pairs]
    trainer = StackedRMTrainer(runs, CFG, splits, set(), CPU)
    with torch.no_grad():
        trainer.params["unembed.W_U"][1] = float("nan")
    with pytest.raises(FloatingPointError, match=r"run 1 \(seed 4\) loss nan at step 0"):
        trainer.step(0)
